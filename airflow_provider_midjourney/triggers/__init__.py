from airflow_provider_midjourney.triggers.midjourney import MidjourneyJobTrigger

__all__ = ["MidjourneyJobTrigger"]
