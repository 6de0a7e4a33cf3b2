"""ptgen: the application layer. The `ptgen` command line and the demo scenario sit here, above
every library package (`preferthinker`, `synthpref`, `generation`, `training`); nothing below
imports it."""
