"""The prompt files (Markdown with `str.format` fields), shipped as package data so
an installed assistant finds them; `Settings.prompts_dir` points here."""
