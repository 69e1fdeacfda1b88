"""The live session: the session panel with start/pause/stop, progress, the episodes running, and
the Task, Agent and Feedback panes of the episode being followed."""

from __future__ import annotations

import time

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, OptionList, Static
from textual.widgets.option_list import Option

from lamsim_tui.ui.live import Changes, EpisodeLive
from lamsim_tui.ui.render import Doc, stream_content, task_content
from lamsim_tui.ui.text import code_style, severity_style
from lamsim_tui.ui.widgets.steps import StepBlock, Wrapped

SIDE_PANES_INTERVAL_S = 0.2
NARROW_COLUMNS = 120  # below this width the left column gives way to the Agent pane
SHORT_ROWS = 36  # below this height the panels shrink so the Agent pane keeps its rows

STATE_LABEL = {
    "idle": ("idle", "$text-muted"),
    "starting": ("starting", "$accent"),
    "running": ("running", "bold $success"),
    "paused": ("paused", "bold $warning"),
    "stopping": ("stopping", "$warning"),
    "finished": ("finished", "bold $primary"),
    "failed": ("failed", "bold $error"),
}


class LiveScreen(Screen):
    AUTO_FOCUS = None
    BINDINGS = [
        Binding("r", "app.start", "Start", id="live.start", tooltip="run the session: generate tasks, run episodes"),
        Binding("p", "app.pause", "Pause/Resume", id="live.pause",
                tooltip="pause: running steps finish, no new step starts; press again to resume"),
        Binding("x", "app.stop", "Stop", id="live.stop", tooltip="stop the session; finished episodes stay stored"),
        Binding("g", "toggle_gold", "Gold", id="live.gold", tooltip="show or hide the task's gold calls and answer"),
        Binding("left_square_bracket", "follow(-1)", "Prev ep.", key_display="[", id="live.prev",
                tooltip="follow the previous episode in the list"),
        Binding("right_square_bracket", "follow(1)", "Next ep.", key_display="]", id="live.next",
                tooltip="follow the next episode in the list"),
        Binding("f", "follow_latest", "Follow", id="live.follow", tooltip="follow the newest running episode again"),
        Binding("o", "expand", "Expand", id="live.expand", tooltip="show longer observations (v on a step: all of it)"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.followed: str | None = None
        self.pinned = False
        self.show_gold = False
        self.expanded = False
        self._blocks: list[StepBlock] = []
        self._dirty = False
        self._episode_ids: list[str] = []
        self._prompt_keys: dict[str, tuple] = {}  # what each episode's line shows: redraw only on change
        self._task_key: tuple | None = None
        self._step_keys: list[tuple] = []
        self._progress_dirty = False
        self._followed_dirty = False
        self._episodes_dirty: set[str] = set()

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≡")
        with Horizontal(id="live-body"):
            with Vertical(id="live-left"):
                with Vertical(id="session-panel", classes="panel"):
                    yield Static(id="session-info")
                    with Horizontal(id="session-buttons"):
                        yield Button("Start", id="btn-start", variant="success", compact=True)
                        yield Button("Pause", id="btn-pause", variant="warning", compact=True)
                        yield Button("Stop", id="btn-stop", variant="error", compact=True)
                with Vertical(id="progress-panel", classes="panel"):
                    yield Wrapped(id="progress-info")
                yield OptionList(id="episodes", classes="panel")
            with Vertical(id="live-right"):
                yield Wrapped(id="task", classes="panel")
                with VerticalScroll(id="agent", classes="panel"):
                    yield Static(id="agent-empty")
                    yield Static(id="stream", classes="stream")
                with VerticalScroll(id="feedback", classes="panel"):
                    yield Wrapped(id="feedback-list")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#session-panel").border_title = "Session"
        self.query_one("#progress-panel").border_title = "Progress"
        self.query_one("#episodes").border_title = "Episodes"
        self.query_one("#task").border_title = "Task"
        self.query_one("#agent").border_title = "Agent"
        self.query_one("#feedback").border_title = "Feedback"
        app = self.app
        app.live_changed.subscribe(self, self._live_changed)
        app.state_changed.subscribe(self, lambda state: self._show_session())
        app.session_changed.subscribe(self, lambda what: self._show_session())
        app.queue_changed.subscribe(self, lambda change: self._mark(progress=True))
        # Counters and the episode list change with every step of every episode; they are redrawn
        # a few times a second, while the followed episode's text is redrawn with every batch.
        self.set_interval(SIDE_PANES_INTERVAL_S, self._flush_side_panes, name="side panes")
        if not app.snapshot:  # the stream rate, the ETA and the waiting times move while a session runs
            self.set_interval(1.0, self._tick, name="rates")
        self._fit(app.size)
        self._show_session()
        self._show_progress()
        self._show_followed(rebuild=True)

    def _tick(self) -> None:
        app = self.app
        if not app.session_running or not self.is_current:
            return
        self._mark(progress=True)
        if app.run_state == "starting":
            self._show_session()
            self._show_followed()
        episode = app.live.episodes.get(self.followed) if self.followed else None
        if episode is not None and not episode.finished and not episode.stream:
            self._show_stream()  # "waiting for … 12 s"

    def on_resize(self, event: events.Resize) -> None:
        self._fit(event.size)

    def _fit(self, size) -> None:
        """Narrow or short terminals: the side panels give way so the Episodes list and the Agent pane stay usable."""
        narrow, short = size.width < NARROW_COLUMNS, size.height < SHORT_ROWS
        if narrow != self.has_class("narrow") or short != self.has_class("short"):
            self.set_class(narrow, "narrow")
            self.set_class(short, "short")
            if self.is_mounted:
                self._show_session()
                self._mark(progress=True)

    def on_screen_resume(self) -> None:
        if self._dirty:
            self._dirty = False
            self._refresh_all()

    # ----- session panel -----------------------------------------------------------------------
    def _show_session(self) -> None:
        app = self.app
        session = app.session
        doc = Doc()
        try:
            shown = app.session_path.relative_to(app.project_root)
        except ValueError:
            shown = app.session_path
        short = self.has_class("short")  # the header names the session; the panel keeps to what changes
        if not short or session is None:
            doc.label("file", 10).line(str(shown), "bold")
        if session is None:
            doc.label("", 10).line(app.session_problem or "no session", "$severity-error")
        else:
            pack = app.pack
            pack_text = f"{pack.name} ({len(pack.tools)} tools)" if pack else (app.pack_problem or "loading…")
            narrow = self.has_class("narrow")
            label = 7 if narrow else 10
            doc.label("pack", label).line(pack_text, "$severity-error" if pack is None and app.pack_problem else "")
            templates = session.templates
            if templates == "all":
                count = f" ({len(pack.templates)})" if pack else ""
                tmpl = f"all{count}"
            elif isinstance(templates, dict):
                tmpl = ", ".join(f"{k} ×{v:g}" for k, v in templates.items())
            else:
                tmpl = ", ".join(templates)
            if not short:
                doc.label("templates", label).line(tmpl)
            agent = session.agent
            if agent.kind == "model":
                models = ", ".join(m.model for m in agent.models)
                doc.label("agent", label).line(f"model {models} ({agent.format})")
            elif agent.kind == "embedded":
                doc.label("agent", label).line(f"embedded {agent.embedded_model}")
            else:
                doc.label("agent", label).line(f"scripted, mistakes {agent.mistake_rate:g}" if narrow else
                                               f"scripted, mistake rate {agent.mistake_rate:g}")
            if narrow:
                doc.label("tasks", label).line(f"{session.tasks}×{session.attempts} · seed {session.seed} · "
                                               f"{session.concurrency} at once")
            else:
                doc.label("tasks", label).line(f"{session.tasks} × {session.attempts}   seed {session.seed}   "
                                               f"at once {session.concurrency}")
            if app.overrides:
                doc.label("flags", label).line(" ".join(app.overrides), "$accent")
            doc.label("store", label).line(
                "open" if app.store is not None else (app.store_problem or "opening…"),
                "$severity-error" if app.store is None and app.store_problem else "$text-muted")
        label = 7 if self.has_class("narrow") else 10
        name, style = STATE_LABEL.get(app.run_state, (app.run_state, ""))
        doc.label("state", label).add(name, style)
        if app.run_note:
            doc.add(f"  {app.run_note}", "$accent" if app.run_state == "starting" else "$text-muted")
        if app.run_state == "starting" and app.starting_since is not None and not app.snapshot:
            doc.add(f" · {time.monotonic() - app.starting_since:.0f} s", "$text-muted")
        self.query_one("#session-info", Static).update(doc.content())
        running = app.session_running
        self.query_one("#btn-start", Button).disabled = running
        self.query_one("#btn-pause", Button).disabled = app.engine is None
        self.query_one("#btn-pause", Button).label = "Resume" if app.run_state == "paused" else "Pause"
        self.query_one("#btn-stop", Button).disabled = not running

    def on_button_pressed(self, event: Button.Pressed) -> None:
        action = {"btn-start": "start", "btn-pause": "pause", "btn-stop": "stop"}.get(event.button.id or "")
        if action:
            self.app.run_action(action)

    # ----- progress ----------------------------------------------------------------------------
    def _show_progress(self) -> None:
        app = self.app
        live = app.live
        progress = live.progress
        running = app.session_running
        total = progress.total if progress else ((app.session.tasks * app.session.attempts) if app.session else 0)
        done = progress.done if progress else 0
        episodes = list(live.episodes.values())
        cancelled = [e for e in episodes if e.cancelled]
        eta = None
        if running and done and total > done and not app.snapshot:
            eta = (time.perf_counter() - live.started_at) / done * (total - done)
        cps = live.chars_per_second() if running and not app.snapshot else None
        pending = app.queue.count("pending")
        filtered = len(app.queue) - pending
        findings = sorted(live.findings.items(), key=lambda kv: (-kv[1], kv[0]))
        short, narrow = self.has_class("short"), self.has_class("narrow")
        tokens = live.completion_tokens

        def build(width: int) -> Content:
            doc = Doc(width)
            # A bar drawn as text: it moves only when an episode finishes (no animation while idle).
            room = max(8, width - 6)
            filled = int(room * done / total) if total else 0
            doc.add("━" * filled, "$success" if total and done >= total else "$primary")
            doc.add("━" * (room - filled), "$panel-lighten-2")
            doc.line(f" {100 * done // total:>3}%" if total else "    –", "$text-muted")
            doc.label("episodes", 10).add(f"{done} / {total if total else '—'}")
            doc.add(f"   running {len(live.running)}", "" if running else "$text-muted")
            if eta is not None:
                minutes, seconds = divmod(int(eta), 60)
                if narrow:  # its own line: the episodes line has no room for it
                    doc.line().label("ETA", 10).add(f"{minutes}:{seconds:02d}", "$text-muted")
                else:
                    doc.add(f"   ETA {minutes}:{seconds:02d}", "$text-muted")
            doc.line()
            if progress is not None:
                if narrow:
                    doc.label("success", 10).line(f"{progress.succeeded}  kept {progress.kept}  filt. {progress.filtered}")
                else:
                    doc.label("success", 10).line(f"{progress.succeeded}   kept {progress.kept}   "
                                                  f"filtered {progress.filtered}")
            if cancelled:
                kept = sum(1 for e in cancelled if e.stored)
                text = f"{len(cancelled)} cancelled ({'not stored' if not kept else f'{kept} stored'})"
                doc.label("stopped", 10).line(text, "$status-discarded")
            doc.label("to review", 10).line(f"{pending} pending · {filtered} filt." if narrow else
                                            f"{pending} pending, {filtered} filtered")
            if cps is not None:
                doc.label("stream", 10).line(f"{cps:,.0f} chars/s (~{cps / 4:,.0f} tok/s)")
            if tokens:
                doc.label("tokens", 10).line(f"{tokens:,} completion")
            if findings and short:  # one line: the commonest codes
                doc.label("findings", 10)
                room = width - 10
                for code, count in findings:
                    piece = f"{code} {count}  "
                    if len(piece) > room:
                        doc.add("…", "$text-muted")
                        break
                    doc.add(f"{code} ", code_style(code)).add(f"{count}  ", "$text-muted")
                    room -= len(piece)
            elif findings:
                doc.line("findings by code", "$text-muted")
                for code, count in findings[:10]:
                    doc.add(f"  {count:>4} ", "").line(code, code_style(code))
                if len(findings) > 10:
                    doc.line(f"  … {len(findings) - 10} more codes (4: statistics)", "$text-muted")
            return doc.content()

        self.query_one("#progress-info", Wrapped).show_with(build)

    # ----- episodes ----------------------------------------------------------------------------
    def _episode_prompt(self, episode: EpisodeLive) -> Content:
        doc = Doc()
        doc.add(f"#{episode.number:<4}" if episode.stored else " " * 5, "$text-muted")
        if not episode.finished:
            doc.add("▶ ", "$accent")
        elif episode.cancelled:
            doc.add("■ ", "$status-discarded")
        elif episode.success:
            doc.add("✓ ", "$verdict-success")
        else:
            doc.add("✗ ", "$verdict-failure")
        narrow = self.has_class("narrow")
        room = 12 if narrow else 22
        if episode.cancelled:  # one line: what happened to it takes the room of the step count
            room = 12 if narrow else 14
            doc.add(f"{episode.template[:room]:<{room}}")
            doc.add(" cancelled" + ("" if narrow else " (stored)" if episode.stored else " (not stored)"),
                    "$status-discarded")
            return doc.content()
        doc.add(f"{episode.template[:room]:<{room}}")
        steps = len(episode.steps) + (0 if episode.finished else 1)
        doc.add(f" {steps:>2} st", "$text-muted")
        if episode.finished:
            doc.add(f" {episode.status[:4] if narrow else episode.status}", f"$status-{episode.status}")
        return doc.content()

    @staticmethod
    def _prompt_key(episode: EpisodeLive) -> tuple:
        return (len(episode.steps), episode.finished, episode.status, episode.number, episode.cancelled)

    def _show_episodes(self, changed: set[str] | None = None) -> None:
        live = self.app.live
        options = self.query_one("#episodes", OptionList)
        ids = list(reversed(live.order))  # newest first
        if ids != self._episode_ids:
            highlighted = options.highlighted_option.id if options.highlighted_option else None
            options.set_options([Option(self._episode_prompt(live.episodes[eid]), id=eid) for eid in ids])
            self._prompt_keys = {eid: self._prompt_key(live.episodes[eid]) for eid in ids}
            self._episode_ids = ids
            target = self.followed if self.followed in ids else highlighted
            if target in ids:
                options.highlighted = ids.index(target)
        else:
            for eid in changed or ():
                episode = live.episodes.get(eid)
                if episode is None:
                    continue
                key = self._prompt_key(episode)
                if self._prompt_keys.get(eid) != key:
                    self._prompt_keys[eid] = key
                    options.replace_option_prompt(eid, self._episode_prompt(episode))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.pinned = True
            self._follow(event.option.id)

    def action_follow(self, step: int) -> None:
        self._flush_side_panes()
        ids = list(reversed(self.app.live.order))
        if not ids:
            return
        index = ids.index(self.followed) if self.followed in ids else 0
        index = (index + step) % len(ids)
        self.pinned = True
        self._follow(ids[index])

    def action_follow_latest(self) -> None:
        self.pinned = False
        running = self.app.live.running
        target = running[-1] if running else (self.app.live.order[-1] if self.app.live.order else None)
        if target:
            self._follow(target)
        self.notify("following the newest running episode", markup=False, timeout=2)

    def _follow(self, episode_id: str) -> None:
        self._flush_side_panes()
        if episode_id != self.followed:
            self.followed = episode_id
            self._show_followed(rebuild=True)
        if episode_id in self._episode_ids:
            self.query_one("#episodes", OptionList).highlighted = self._episode_ids.index(episode_id)

    # ----- followed episode --------------------------------------------------------------------
    def _live_changed(self, changes: Changes) -> None:
        if self.app.screen is not self and not self.is_current:
            self._dirty = True
            self._auto_follow(changes)
            return
        self._auto_follow(changes)
        self._mark(progress=changes.progress or bool(changes.finished), episodes=changes.episodes)
        if self.followed in changes.episodes:
            self._followed_dirty = True  # new step blocks change the layout: drawn with the side panes
        if self.followed in changes.streamed:
            self._show_stream()  # a repaint of a fixed-size area: drawn with every batch

    @property
    def settled(self) -> bool:
        """Nothing waits to be drawn (tests and snapshots wait for this instead of sleeping)."""
        return not (self._dirty or self._progress_dirty or self._followed_dirty or self._episodes_dirty)

    def _mark(self, *, progress: bool = False, episodes: set[str] | None = None) -> None:
        self._progress_dirty = self._progress_dirty or progress
        if episodes:
            self._episodes_dirty.update(episodes)

    def _flush_side_panes(self) -> None:
        if not self.is_current:
            return
        if self._followed_dirty:
            self._followed_dirty = False
            self._show_followed()
        if self._progress_dirty:
            self._progress_dirty = False
            self._show_progress()
        if self._episodes_dirty or self.app.live.order != list(reversed(self._episode_ids)):
            changed, self._episodes_dirty = self._episodes_dirty, set()
            self._show_episodes(changed)

    def _auto_follow(self, changes: Changes) -> None:
        live = self.app.live
        if self.followed is not None and self.followed not in live.episodes:
            self.followed = None
        if self.pinned and self.followed is not None:
            return
        current = live.episodes.get(self.followed) if self.followed else None
        if current is None or current.finished:
            running = live.running
            # the first one running; with none running and none followed (a run faster than the screen),
            # the newest, rather than "Press r to start" after episodes ran
            target = running[0] if running else (live.order[-1] if current is None and live.order else None)
            if target is not None and target != self.followed:
                self.followed = target
                if not self._dirty:
                    self._show_followed(rebuild=True)

    def _refresh_all(self) -> None:
        self._show_session()
        self._show_progress()
        self._show_episodes(set(self.app.live.episodes))
        self._show_followed(rebuild=True)

    def _show_followed(self, rebuild: bool = False) -> None:
        live = self.app.live
        episode = live.episodes.get(self.followed) if self.followed else None
        task = self.query_one("#task", Wrapped)
        agent = self.query_one("#agent", VerticalScroll)
        empty = self.query_one("#agent-empty", Static)
        if episode is None:
            self._task_key = None
            app = self.app
            if app.run_state == "starting" and app.run_note:
                elapsed = "" if app.snapshot or app.starting_since is None else \
                    f" · {time.monotonic() - app.starting_since:.0f} s"
                waiting = Content.styled(app.run_note + elapsed, "$accent")
                task.show_with(lambda width: waiting)
            else:
                task.show_with(lambda width: Content.styled(
                    "Press r to start the session. Trajectories go to the review queue (2).", "$text-muted"))
            empty.display = True
            empty.update(Content.styled("No episode yet.", "$text-muted"))
            self._clear_blocks()
            self._show_stream()
            self._show_feedback(None)
            return
        empty.display = False
        compact = self.has_class("narrow") or self.has_class("short")
        task_key = (episode.id, self.show_gold, episode.number, compact)
        if task_key != self._task_key:
            self._task_key = task_key
            if compact:  # a few lines only: the query must not be pushed out by ids
                number = f"#{episode.number}" if episode.stored else "(not stored yet)"
                header = f"episode {number} · attempt {episode.attempt + 1} · {episode.template}"
            else:
                short_id = "" if self.app.snapshot else f" · {episode.id[:10]}"  # ids are random: not in snapshots
                number = f"#{episode.number}{short_id}" if episode.stored else f"{episode.id[:10]} (not stored yet)"
                header = f"episode {number} · task {episode.task_id} · attempt {episode.attempt + 1}"
            show_gold = self.show_gold
            task.show_with(lambda width: task_content(
                episode.query, template=episode.template, gold_calls=episode.gold_calls,
                gold_answer=episode.gold_answer, show_gold=show_gold, header=header, width=width,
                demonstrations=episode.demonstrations, compact=compact))
        at_end = agent.scroll_y >= agent.max_scroll_y - 1
        if rebuild:
            self._clear_blocks()
        stream = self.query_one("#stream", Static)
        for step in episode.steps:
            key = (step.action is not None, step.raw, step.observation is None, len(step.feedback), self.expanded)
            if step.index < len(self._blocks):
                if self._step_keys[step.index] != key:
                    self._step_keys[step.index] = key
                    self._blocks[step.index].changes_state = self._changes_state(step)
                    self._blocks[step.index].show(step, expanded=self.expanded)
            else:
                block = StepBlock(step, expanded=self.expanded, classes="step", changes_state=self._changes_state(step),
                                  width_hint=max(0, agent.scrollable_content_region.width - 2))
                self._blocks.append(block)
                self._step_keys.append(key)
                agent.mount(block, before=stream)
        self._show_stream()
        self._show_feedback(episode)
        if at_end or rebuild:
            agent.call_after_refresh(agent.scroll_end, animate=False)

    def _changes_state(self, step) -> bool:
        from lamsim_tui.record import ToolCall

        pack = self.app.pack
        spec = pack.tools.get(step.action.tool) if pack is not None and isinstance(step.action, ToolCall) else None
        return bool(spec is not None and spec.changes_state)

    def _clear_blocks(self) -> None:
        """Remove the step blocks in one go: focus on one of them moves to a widget that stays (the
        Agent pane), never to a sibling that is itself on its way out (one at a time, it would)."""
        if self._blocks:
            self.query_one("#agent", VerticalScroll).remove_children(self._blocks)
        self._blocks = []
        self._step_keys = []

    def _show_stream(self) -> None:
        live = self.app.live
        episode = live.episodes.get(self.followed) if self.followed else None
        stream = self.query_one("#stream", Static)
        # A fixed-height area: updating it is a repaint of that area, not a layout of the screen.
        if episode is None:
            stream.update("", layout=False)
        elif episode.cancelled:
            doc = Doc()
            doc.add("episode cancelled ", "bold $status-discarded")
            doc.add(f"(stored as #{episode.number})" if episode.stored else "(not stored)", "$text-muted")
            stream.update(doc.content(), layout=False)
        elif episode.finished:
            doc = Doc()
            doc.add("episode finished: ", "$text-muted").add(
                "success" if episode.success else "failed",
                "bold $verdict-success" if episode.success else "bold $verdict-failure")
            doc.add(f" · {episode.end_reason} · {episode.status}", "$text-muted")
            doc.add(f" · stored as #{episode.number}" if episode.stored else " · storing…", "$text-muted")
            stream.update(doc.content(), layout=False)
        elif episode.stream:
            stream.update(stream_content(episode.streaming_text, self._stream_width()), layout=False)
        else:
            stream.update(self._waiting(episode), layout=False)

    def _waiting(self, episode: EpisodeLive) -> Content:
        """"waiting for the agent…", and after a few seconds for whom, how long, and how long it usually takes."""
        app = self.app
        waited = time.perf_counter() - episode.waiting_since if episode.waiting_since else 0.0
        if app.snapshot or waited < 2 or app.session is None or app.session.agent.kind == "scripted":
            return Content.styled("waiting for the agent…", "italic $text-muted")
        doc = Doc()
        doc.add(f"waiting for {app.model_name()}… no reply for {waited:.0f} s", "italic $severity-warning"
                if waited > 30 else "italic $text-muted")
        usual = app.live.typical_ttft()
        if usual is None and not any(s.action is not None for e in app.live.episodes.values() for s in e.steps):
            usual = app.first_reply_s(app.model_name())
            if usual is not None:
                doc.add(f" (its first reply here took about {usual:.0f} s)", "$text-muted")
        elif usual is not None:
            doc.add(f" (replies here start after about {usual:.1f} s)", "$text-muted")
        return doc.content()

    def _stream_width(self) -> int:
        return max(20, self.query_one("#stream", Static).content_size.width)

    def _show_feedback(self, episode: EpisodeLive | None) -> None:
        key = (episode.id, sum(len(s.feedback) for s in episode.steps)) if episode else None
        if key == getattr(self, "_feedback_key", ()):
            return
        self._feedback_key = key
        findings = [(step.index, f) for step in episode.steps for f in step.feedback] if episode else []
        total = len(findings)

        def build(width: int) -> Content:
            doc = Doc(width)
            for index, finding in findings:
                doc.add(f"step {index + 1:<3} ", "$text-muted")
                doc.add(f"{finding.code:<18} ", severity_style(finding.severity))
                doc.indented(finding.message, indent=28)
            if not findings:
                doc.add("No feedback for this episode yet." if episode else "", "$text-muted")
            return doc.content()

        pane = self.query_one("#feedback", VerticalScroll)
        follow = pane.scroll_y >= pane.max_scroll_y - 1  # unless the operator scrolled back to read
        self.query_one("#feedback-list", Wrapped).show_with(build)
        pane.border_subtitle = f"{total} finding(s)" if episode else ""
        if follow:
            pane.call_after_refresh(pane.scroll_end, animate=False)

    # ----- toggles -----------------------------------------------------------------------------
    def action_toggle_gold(self) -> None:
        self.show_gold = not self.show_gold
        self._show_followed()

    def action_expand(self) -> None:
        self.expanded = not self.expanded
        for block in self._blocks:
            block.show(block.step, expanded=self.expanded)
        self.notify("observations expanded" if self.expanded else "observations truncated", markup=False, timeout=2)
