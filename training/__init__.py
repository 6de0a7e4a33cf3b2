"""training: PreferImg-CoT style data building, rewards, cold-start SFT and GRPO for the assessor."""
