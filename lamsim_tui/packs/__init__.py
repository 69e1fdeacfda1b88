"""Tool packs: folders under `tools/` holding tools, seed data and task templates.

The author-facing API is `tool`, `template`, `ToolError` and `Sandbox` (see docs/tool-packs.md):

    from lamsim_tui.packs import Sandbox, ToolError, template, tool

    @tool
    def get_case(sb: Sandbox, case_id: str) -> dict:
        '''Get one support case.

        Args:
            case_id: Case id such as "C-0042".
        '''
        case = sb.get("cases", case_id)
        if case is None:
            raise ToolError(f"No case with id {case_id}.")
        return case
"""

from lamsim_tui.packs.authoring import (
    ANSWER_TYPES,
    DataView,
    Schema,
    TemplateSpec,
    ToolSpec,
    fixed_task,
    template,
    tool,
)
from lamsim_tui.packs.loading import Pack, load_pack
from lamsim_tui.packs.sandbox import Sandbox, ToolError

__all__ = ["ANSWER_TYPES", "DataView", "Pack", "Sandbox", "Schema", "TemplateSpec", "ToolError", "ToolSpec",
           "fixed_task", "load_pack", "template", "tool"]
