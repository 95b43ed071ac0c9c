"""Per-account Midjourney settings and the settings-family commands (settings, info, ...)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

USERNAME = "emulator_user"  # the Discord user the emulator's account belongs to
SETTINGS_VERBS = ("settings", "info", "fast", "relax", "turbo", "remix", "variability")
_MODE_NAMES = {"fast": "Fast", "relax": "Relaxed", "turbo": "Turbo"}
_SPEED_TEXT = {
    "fast": "Done! Note that once you exhaust your fast hours, you can purchase more on the "
    "website: . To conserve your fast hours, use `/relax` to switch back to relax mode.",
    "relax": "Done! Your jobs now do not consume fast-hours, but might take a little longer. "
    "You can always switch back with `/fast`",
    "turbo": "**Turbo mode enabled!** Your jobs will cost around 2x more than on `/fast` mode. "
    "Note that once you exhaust your fast hours, you can always purchase more on the website: "
    ". To conserve your fast hours, use `/relax` to switch back to relax mode.",
}
_REMIX_TEXT = {
    True: "Remix mode turned on! Clicking the variation buttons will now give you a chance to "
    "edit your prompt! You can always turn this off by running `/prefer remix` again.",
    False: "Remix mode turned off! You can always turn this on by running `/prefer remix` again.",
}
_VARIABILITY_TEXT = {
    True: "Strong variability mode turned on! Clicking the variation buttons will now make "
    "your variations stronger! You can always turn this off by running `/prefer variability` "
    "again.",
    False: "Subtle variability mode turned on! Clicking the variation buttons will now make "
    "your variations more subtle! You can always turn this off by running "
    "`/prefer variability` again.",
}


@dataclass
class AccountSettings:
    version: str = "7"
    stylize: int = 250
    raw: bool = False
    personalization: bool = False
    public: bool = True
    remix: bool = False
    variability: bool = False
    speed: str = "fast"

    @property
    def suffix(self) -> str:
        return f"--v {self.version} --s {self.stylize}" + (" --style raw" if self.raw else "")

    def speeds(self) -> dict[str, bool]:
        return {key: self.speed == key for key in ("relax", "fast", "turbo")}

    def full(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "raw": self.raw,
            "stylize": self.stylize,
            "personalization": self.personalization,
            "public": self.public,
            "remix": self.remix,
            "variability": self.variability,
            "turbo": self.speed == "turbo",
            "fast": self.speed == "fast",
            "relax": self.speed == "relax",
            "suffix": self.suffix,
        }


def _toggle_row(s: AccountSettings) -> list[dict[str, Any]]:
    def button(label: str, on: bool, custom_id: str) -> dict[str, Any]:
        return {"type": 2, "style": 3 if on else 2, "label": label, "custom_id": custom_id}

    return [
        {
            "type": 1,
            "components": [
                button("RAW Mode", s.raw, "MJ::Settings::Style::raw"),
                *(
                    button(f"Stylize {name}", s.stylize == value, f"MJ::Settings::Stylization::{value}")
                    for name, value in (("low", 50), ("med", 100), ("high", 250), ("very high", 750))
                ),
            ],
        },
        {
            "type": 1,
            "components": [
                button("Personalization", s.personalization, "MJ::Settings::PersonalizedStyle"),
                button("Public mode", s.public, "MJ::Settings::PrivateMode::off"),
                button("Remix mode", s.remix, "MJ::Settings::RemixMode"),
                button("Strong Variation Mode", s.variability, "MJ::Settings::HighVariabilityMode::1"),
                button("Subtle Variation Mode", not s.variability, "MJ::Settings::HighVariabilityMode::0"),
            ],
        },
        {
            "type": 1,
            "components": [
                button("Turbo mode", s.speed == "turbo", "MJ::Settings::TurboMode"),
                button("Fast mode", s.speed == "fast", "MJ::Settings::FastMode"),
                button("Relax mode", s.speed == "relax", "MJ::Settings::RelaxMode"),
                button("Reset Settings", False, "MJ::Settings::ResetSettings"),
            ],
        },
    ]


def _info_text(s: AccountSettings, channel: str, running: int) -> str:
    return (
        f"**User ID**: {channel}\n**Subscription**: Standard (Active monthly)\n"
        f"**Job Mode**: {_MODE_NAMES[s.speed]}\n"
        f"**Visibility Mode**: {'Public' if s.public else 'Stealth'}\n"
        "**Fast Time Remaining**: 9.34/15.0 hours (62.27%)\n"
        "**Queued Jobs (fast)**: 0\n**Queued Jobs (relax)**: 0\n"
        f"**Running Jobs**: {running or 'None'}"
    )


def run_command(verb: str, s: AccountSettings, channel: str, running: int) -> dict[str, Any]:
    """Apply a settings-family command to ``s`` and return the job's completed ``response``."""
    return {"embeds": [], "attachments": [], **_command(verb, s, channel, running)}


def _command(verb: str, s: AccountSettings, channel: str, running: int) -> dict[str, Any]:
    if verb in _SPEED_TEXT:
        s.speed = verb
        return {"content": _SPEED_TEXT[verb], "components": [], "settings": s.speeds()}
    if verb == "remix":
        s.remix = not s.remix
        return {"content": _REMIX_TEXT[s.remix], "components": [], "settings": {"remix": s.remix}}
    if verb == "variability":
        s.variability = not s.variability
        text = _VARIABILITY_TEXT[s.variability]
        return {"content": text, "components": [], "settings": {"variability": s.variability}}
    if verb == "info":
        text = _info_text(s, channel, running)
        embed = {"type": "rich", "title": f"Your info - {USERNAME}", "description": text, "color": 0}
        link = {"url": "https://www.midjourney.com/imagine", "type": 2, "style": 5, "label": "Go to your feed"}
        return {
            "embeds": [embed],
            "content": text,
            "components": [{"type": 1, "components": [link]}],
            "settings": s.speeds(),
        }
    return {
        "content": f"Adjust your settings here. Current suffix: ` {s.suffix}`",
        "components": _toggle_row(s),
        "settings": s.full(),
    }
