"""Deprecated: the names earlier releases exported here, from their new homes.

The neutral request models live in :mod:`~airflow_provider_midjourney.job_requests`, the job
vocabulary in :mod:`~airflow_provider_midjourney.vocabulary`, local-image intake in
:mod:`~airflow_provider_midjourney.image_intake`, text checks in
:mod:`~airflow_provider_midjourney.input_checks`, and useapi.net v3's wire models in
:mod:`~airflow_provider_midjourney.hooks.useapi_v3_models`. The provider's own code imports
from those; this module only keeps users' imports working.
"""

from __future__ import annotations

from airflow_provider_midjourney.hooks.useapi_v3_models import (
    CDN_PREFIX,
    JOB_ID_PATTERN,
    MAX_ACCOUNT_REPLY_URL_LENGTH,
    Account,
    AccountRequest,
    Attachment,
    ChannelJobs,
    Embed,
    Job,
    JobRequestEcho,
    JobResponse,
    MediaUx,
    RunningJob,
    RunningJobs,
    Settings,
    SSEEvent,
    check_job_id,
)
from airflow_provider_midjourney.image_intake import (
    MAX_BLOB_BYTES,
    ImageBlob,
    ImageSource,
    image_from_source,
    image_type,
    read_local_image,
)
from airflow_provider_midjourney.input_checks import (
    CHANNEL_PATTERN,
    MAX_PROMPT_LENGTH,
    SAFE_ID_PATTERN,
    check_channel,
    check_http_url,
    check_safe_id,
    is_blank,
)
from airflow_provider_midjourney.input_checks import checked_job_id as _check_job_id
from airflow_provider_midjourney.input_checks import checked_optional_url as _check_url
from airflow_provider_midjourney.input_checks import checked_prompt as _check_prompt
from airflow_provider_midjourney.job_requests import (
    JOB_REQUEST_TYPES,
    MAX_BLEND_IMAGES,
    MAX_REPLY_LENGTH,
    MIN_BLEND_IMAGES,
    BlendRequest,
    ButtonRequest,
    DescribeRequest,
    ImagineRequest,
    JobOptions,
    SeedRequest,
    SettingsRequest,
)
from airflow_provider_midjourney.vocabulary import (
    EXECUTE_ONCE_BUTTONS,
    PROMPT_BUTTONS,
    RUNNING_STATUSES,
    SETTINGS_COMMANDS,
    TERMINAL_STATUSES,
    BlendDimensions,
    Button,
    JobStatus,
    JobType,
    OpenEnum,
    ReplyLevel,
    SettingsCommand,
    Verb,
)
from airflow_provider_midjourney.wire import HttpBody, OpenModel

__all__ = [
    "CDN_PREFIX",
    "CHANNEL_PATTERN",
    "EXECUTE_ONCE_BUTTONS",
    "JOB_ID_PATTERN",
    "JOB_REQUEST_TYPES",
    "MAX_ACCOUNT_REPLY_URL_LENGTH",
    "MAX_BLEND_IMAGES",
    "MAX_BLOB_BYTES",
    "MAX_PROMPT_LENGTH",
    "MAX_REPLY_LENGTH",
    "MIN_BLEND_IMAGES",
    "PROMPT_BUTTONS",
    "RUNNING_STATUSES",
    "SAFE_ID_PATTERN",
    "SETTINGS_COMMANDS",
    "TERMINAL_STATUSES",
    "Account",
    "AccountRequest",
    "Attachment",
    "BlendDimensions",
    "BlendRequest",
    "Button",
    "ButtonRequest",
    "ChannelJobs",
    "DescribeRequest",
    "Embed",
    "HttpBody",
    "ImageBlob",
    "ImageSource",
    "ImagineRequest",
    "Job",
    "JobOptions",
    "JobRequestEcho",
    "JobResponse",
    "JobStatus",
    "JobType",
    "MediaUx",
    "OpenEnum",
    "OpenModel",
    "ReplyLevel",
    "RunningJob",
    "RunningJobs",
    "SSEEvent",
    "SeedRequest",
    "Settings",
    "SettingsCommand",
    "SettingsRequest",
    "Verb",
    "_check_job_id",
    "_check_prompt",
    "_check_url",
    "check_channel",
    "check_http_url",
    "check_job_id",
    "check_safe_id",
    "image_from_source",
    "image_type",
    "is_blank",
    "read_local_image",
]
