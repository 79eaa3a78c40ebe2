"""The two facades, SleepTimeAgent and AsyncSleepTimeAgent, over one shared flow."""
