from airflow_provider_midjourney.sensors.midjourney import MidjourneyJobSensor

__all__ = ["MidjourneyJobSensor"]
