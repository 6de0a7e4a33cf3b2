"""ComfyUI custom nodes for ptgen (thin classes over preferthinker and generation)."""
