"""A scrollable pane of long styled text (a trajectory in detail) that draws only the lines on screen.

The Content is built for the pane's width and turned into lines once; scrolling and repaints reuse
them. Showing another trajectory is one build, not a layout of a tall widget inside a scroll
container (which re-measured the whole text on every repaint).
"""

from __future__ import annotations

from collections.abc import Callable

from textual import events
from textual.content import Content
from textual.geometry import Size
from textual.reactive import Reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.visual import Visual


class QuietScrollView(ScrollView):
    """A Line-API view whose content height can change without a layout of the whole screen.

    Textual lays the screen out again (and repaints every widget) whenever a widget's virtual size
    changes; for these views only their own lines change, so the size is set without that, and the
    scrollbar (always shown, so its appearing never changes the width) is told the new range.
    """

    DEFAULT_CSS = """
    QuietScrollView { overflow-x: hidden; overflow-y: scroll; }
    """
    virtual_size = Reactive(Size(0, 0), layout=False)

    def set_content_height(self, lines: int) -> None:
        self.virtual_size = Size(self.scrollable_content_region.width, lines)
        bar = self.vertical_scrollbar
        bar.window_virtual_size = lines
        bar.window_size = self.scrollable_content_region.height
        bar.position = self.scroll_y
        self.refresh()


class DetailView(QuietScrollView):

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._builder: Callable[[int], Content] = lambda width: Content("")
        self._strips: list[Strip] = []
        self._built_for = -1
        self.content = Content("")  # what is shown (tests read `content.plain`)

    def show_with(self, builder: Callable[[int], Content]) -> None:
        """Show what `builder(width)` makes, from the top."""
        self._builder = builder
        self._built_for = -1
        self.scroll_to(y=0, animate=False)
        self._build()

    def on_resize(self, event: events.Resize) -> None:
        if self.scrollable_content_region.width != self._built_for:
            self._build()

    def on_mount(self) -> None:
        self._build()

    def _build(self) -> None:
        width = self.scrollable_content_region.width
        if width <= 0 or not self.is_mounted:
            return
        self._built_for = width
        self.content = self._builder(width)
        self._strips = Visual.to_strips(self, self.content, width, None, self.visual_style)
        self.set_content_height(len(self._strips))

    def render_line(self, y: int) -> Strip:
        index = int(self.scroll_y) + y
        width = self.scrollable_content_region.width
        if 0 <= index < len(self._strips):
            return self._strips[index].crop_extend(0, width, self.visual_style.rich_style)
        return Strip.blank(width, self.visual_style.rich_style)
