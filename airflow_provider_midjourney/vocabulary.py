"""The neutral words of a job, the same on every backend: statuses, verbs, buttons, settings commands.

Open enums: a value a vendor adds later becomes a new member instead of an error, so a vendor
change never breaks a running pipeline. No pydantic here: the operators use these at DAG parse.
"""

from __future__ import annotations

from enum import Enum
from typing import Literal


class OpenEnum(str, Enum):
    """A string enum that turns an unknown value into a new member instead of failing."""

    @classmethod
    def _missing_(cls, value: object) -> OpenEnum | None:
        if not isinstance(value, str):
            return None
        member = str.__new__(cls, value)
        member._name_ = value
        member._value_ = value
        return member

    def __str__(self) -> str:
        return str(self.value)

    @property
    def is_known(self) -> bool:
        return self.name in type(self).__members__


class JobStatus(OpenEnum):
    CREATED = "created"
    STARTED = "started"
    PROGRESS = "progress"
    COMPLETED = "completed"
    FAILED = "failed"
    MODERATED = "moderated"


TERMINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.MODERATED})
RUNNING_STATUSES = frozenset({JobStatus.CREATED, JobStatus.STARTED, JobStatus.PROGRESS})


class Verb(OpenEnum):
    IMAGINE = "imagine"
    BUTTON = "button"
    DESCRIBE = "describe"
    BLEND = "blend"
    SEED = "seed"
    SETTINGS = "settings"
    INFO = "info"
    FAST = "fast"
    RELAX = "relax"
    TURBO = "turbo"
    REMIX = "remix"
    VARIABILITY = "variability"


class JobType(OpenEnum):
    IMAGE = "image"
    VIDEO = "video"


class Button(OpenEnum):
    U1 = "U1"
    U2 = "U2"
    U3 = "U3"
    U4 = "U4"
    V1 = "V1"
    V2 = "V2"
    V3 = "V3"
    V4 = "V4"
    PAN_LEFT = "⬅️"
    PAN_RIGHT = "➡️"
    PAN_UP = "⬆️"
    PAN_DOWN = "⬇️"
    VARY_REGION = "Vary (Region)"
    VARY_STRONG = "Vary (Strong)"
    VARY_SUBTLE = "Vary (Subtle)"
    ZOOM_OUT_1_5X = "Zoom Out 1.5x"
    ZOOM_OUT_2X = "Zoom Out 2x"
    UPSCALE_2X = "Upscale (2x)"
    UPSCALE_4X = "Upscale (4x)"
    UPSCALE_SUBTLE = "Upscale (Subtle)"
    UPSCALE_CREATIVE = "Upscale (Creative)"
    REDO_UPSCALE_2X = "Redo Upscale (2x)"
    REDO_UPSCALE_4X = "Redo Upscale (4x)"
    REDO_UPSCALE_SUBTLE = "Redo Upscale (Subtle)"
    REDO_UPSCALE_CREATIVE = "Redo Upscale (Creative)"
    MAKE_SQUARE = "Make Square"
    MAKE_VARIATIONS = "Make Variations"
    REMASTER = "Remaster"
    CUSTOM_ZOOM = "Custom Zoom"
    REROLL = "🔄"
    ANIMATE_LOW = "Animate (Low motion)"
    ANIMATE_HIGH = "Animate (High motion)"
    EXTEND_LOW = "Extend (Low motion)"
    EXTEND_HIGH = "Extend (High motion)"


EXECUTE_ONCE_BUTTONS = frozenset({Button.U1, Button.U2, Button.U3, Button.U4})
# Buttons that take a prompt (Custom Zoom always; the others when Remix mode is on).
PROMPT_BUTTONS = frozenset(
    {
        Button.CUSTOM_ZOOM,
        Button.V1,
        Button.V2,
        Button.V3,
        Button.V4,
        Button.VARY_REGION,
        Button.VARY_STRONG,
        Button.VARY_SUBTLE,
        Button.PAN_LEFT,
        Button.PAN_RIGHT,
        Button.PAN_UP,
        Button.PAN_DOWN,
        Button.REROLL,
    }
)
SETTINGS_COMMANDS = ("settings", "info", "fast", "relax", "turbo", "remix", "variability")
SettingsCommand = Literal["settings", "info", "fast", "relax", "turbo", "remix", "variability"]
ReplyLevel = Literal["all", "standard", "minimal"]
BlendDimensions = Literal["Portrait", "Square", "Landscape"]
