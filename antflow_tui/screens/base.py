"""RunScreen: what every screen of a run shares: its source and state, its data colours,
keys hidden when the source cannot do what they ask, and a view the app brings up to date
each frame."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.screen import Screen

from antflow_tui.keys import bindings, needs
from antflow_tui.messages import PaletteChanged, PauseRequested, ScreenUncovered
from antflow_tui.palette import COMPONENT_CLASSES, Palette, palette_of

if TYPE_CHECKING:
    from collections.abc import Mapping

    from textual.binding import BindingType

    from antflow_tui.source.base import Can, RunSource
    from antflow_tui.source.state import RunState


class RunScreen(Screen[None]):
    """A screen showing a run.

    `p` pauses or resumes the whole run on every screen, whatever has focus; what a screen
    shows or selects (a stage, a worker) pauses with `P` (see `MainScreen`).

    Args:
        source: Where the run comes from (pulls: item stories, worker stacks).
        state: The run's state, updated by the app every frame.
    """

    BINDINGS: ClassVar[list[BindingType]] = bindings("run")
    COMPONENT_CLASSES: ClassVar[set[str]] = set(COMPONENT_CLASSES)
    NEEDS: ClassVar[Mapping[str, Can]] = needs("run")
    """Action name -> what the source must be able to do for it; else its key is hidden."""

    def __init__(
        self,
        source: RunSource,
        state: RunState,
        *,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.source = source
        self.state = state
        self._palette: Palette | None = None
        self._palette_shown: Palette | None = None

    @property
    def palette(self) -> Palette:
        """The data colours of the current theme (see `antflow_tui.palette`)."""
        if self._palette is None:
            self._palette = palette_of(self)
        return self._palette

    def notify_style_update(self) -> None:
        super().notify_style_update()
        # Component styles are applied after this call: read them once they are.
        self._palette = None
        if self.is_mounted:
            self.call_after_refresh(self._check_palette)

    def _check_palette(self) -> None:
        palette = self.palette
        if self._palette_shown is not None and palette != self._palette_shown:
            self.post_message(PaletteChanged())
        self._palette_shown = palette

    def on_mount(self) -> None:
        self._palette_shown = self.palette

    def on_screen_resume(self) -> None:
        self.post_message(ScreenUncovered())

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        needed = self.NEEDS.get(action)
        return needed is None or self.source.can(needed)

    def refresh_view(self, *, force: bool = False) -> None:
        """Bring the screen up to date with the run; the app calls it every frame the
        screen is in view (`force`: now, skipping throttles)."""

    def action_pause_run(self) -> None:
        """Pause or resume the whole run."""
        self.post_message(PauseRequested())
