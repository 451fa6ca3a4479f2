"""The documentation against the code: reference pages that must match what the code
defines, the README's set-up commands, links that must resolve, examples that must run."""
