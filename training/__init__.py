"""training: PreferImg-CoT style data building, rewards, cold-start SFT, GRPO for the assessor."""
