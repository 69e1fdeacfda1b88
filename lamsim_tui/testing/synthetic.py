"""Realistic trajectory records made without a model, for the store benchmark and tests.

Built through the record's own types (`lamsim_tui.record`), so they have exactly the shape of
the engine's records: CRM-like tools, a system prompt, 3-8 steps with thoughts, tool calls, JSON
observations, feedback and usage, a verdict.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

from lamsim_tui.record import (
    EpisodeInfo,
    Finding,
    Finish,
    GoldCall,
    PackInfo,
    SessionInfo,
    Task,
    Timing,
    ToolCall,
    Trajectory,
    Verdict,
    new_step,
)

TEMPLATES = ("open_cases_for_account", "escalate_case", "total_order_value", "contact_email", "reassign_owner")
TOOL_NAMES = (
    "list_accounts",
    "get_account",
    "search_cases",
    "get_case",
    "update_case",
    "list_orders",
    "get_contact",
    "assign_owner",
)


def tool_schemas() -> list[dict]:
    tools = []
    for name in TOOL_NAMES:
        tools.append(
            {
                "type": "function",
                "function": {
                    "name": name,
                    "description": f"{name.replace('_', ' ').capitalize()} in the CRM. Returns JSON rows; raises an "
                    "error when the record does not exist. Use ids exactly as returned by other tools.",
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "account_id": {"type": "string", "description": "account id such as ACC-0042"},
                            "status": {
                                "type": "string",
                                "enum": ["open", "pending", "closed"],
                                "description": "case status filter",
                            },
                            "limit": {"type": "integer", "minimum": 1, "maximum": 50, "description": "max rows"},
                        },
                        "required": ["account_id"],
                        "additionalProperties": False,
                    },
                },
            }
        )
    return tools


SYSTEM_PROMPT = (
    "You are a CRM assistant. Solve the user's task by calling tools, one per turn. Reply with one JSON "
    'object: {"thought": "...", "tool": "<name>", "arguments": {...}}. When you know the answer, call '
    'the tool `finish` with {"answer": ...}. Use only ids you have seen in tool results. ' * 4
)


def make_record(
    rng: random.Random, index: int, *, status: str | None = None, template: str | None = None, session: str = "bench"
) -> Trajectory:
    template = template or TEMPLATES[index % len(TEMPLATES)]
    account = f"ACC-{rng.randrange(1, 500):04d}"
    gold_answer = rng.randrange(1, 40)
    started = datetime(2025, 5, 1, tzinfo=UTC) + timedelta(seconds=index * 7)
    steps = []
    n_calls = rng.randrange(2, 8)
    wrong = rng.random() < 0.3
    for i in range(n_calls):
        tool = TOOL_NAMES[(i + index) % len(TOOL_NAMES)]
        bad = i == 1 and rng.random() < 0.25
        args = {"account_id": account, "limit": 10} if not bad else {"acount_id": account}
        rows = [
            {
                "case_id": f"CS-{rng.randrange(10000):05d}",
                "account_id": account,
                "status": "open",
                "subject": "Billing question about invoice " + str(rng.randrange(1000)),
                "priority": "high",
            }
            for _ in range(rng.randrange(1, 5))
        ]
        feedback = []
        if bad:
            feedback.append(Finding("args.unexpected", "error",
                                    f"Tool '{tool}' has no argument 'acount_id'. Did you mean 'account_id'?"))
        thought = f"I need the {tool.replace('_', ' ')} for {account} to answer."
        steps.append(new_step(
            i,
            raw=json.dumps({"thought": thought, "tool": tool, "arguments": args}),
            thought=thought,
            action=ToolCall(tool, args, f"call_{index}_{i}"),
            observation=feedback[0].message if bad else json.dumps(rows),
            result=None if bad else rows,
            executed=not bad,
            feedback=feedback,
            usage={"prompt_tokens": 900 + 150 * i, "completion_tokens": 60, "total_tokens": 960 + 150 * i},
            engine_s=0.0004,
        ))
    answer = gold_answer + (1 if wrong else 0)
    steps.append(new_step(
        n_calls,
        raw=json.dumps({"thought": "I have it.", "tool": "finish", "arguments": {"answer": answer}}),
        thought="I have it.",
        action=Finish(answer, f"call_{index}_f"),
        executed=True,
        feedback=[Finding("answer.wrong", "error", "That answer is not correct.")] if wrong else [],
        usage={"prompt_tokens": 1900, "completion_tokens": 20, "total_tokens": 1920},
        engine_s=0.0001,
    ))
    findings: dict[str, int] = {}
    for step in steps:
        for fb in step.feedback:
            findings[fb.code] = findings.get(fb.code, 0) + 1
    passed = not wrong
    return Trajectory(
        id=f"{rng.getrandbits(128):032x}",
        status=status or ("pending" if passed else "filtered"),
        created_at=started.isoformat(),
        finished_at=(started + timedelta(seconds=12)).isoformat(),
        session=SessionInfo(name=session, path=f"sessions/{session}.yaml", seed=7,
                            settings={"pack": "crm", "tasks": 1000, "budget": {"max_steps": 12}}),
        pack=PackInfo(name="crm", version="0.1.0"),
        agent={"kind": "model", "model": "ollama_chat/qwen2.5:7b", "format": "json", "temperature": 0.7},
        episode=EpisodeInfo(seed=rng.randrange(1 << 30), attempt=0),
        task=Task(
            id=f"{template}-{index}",
            template=template,
            query=f"How many open cases does account {account} have?",
            slots={"account_id": account},
            gold_calls=(GoldCall("search_cases", {"account_id": account, "status": "open"},
                                 [{"case_id": "CS-00001"}]),),
            gold_answer=gold_answer,
            answer_type="number",
            tolerance=0,
            judge_state=False,
            state_fields=None,
            gold_state={},
        ),
        tools=tool_schemas(),
        system_prompt=SYSTEM_PROMPT,
        steps=tuple(steps),
        final_answer=answer,
        end_reason="finished",
        final_state={},
        verdict=Verdict(
            success=not wrong,
            answer_correct=not wrong,
            state_correct=None,
            reasons=("answer differs from gold",) if wrong else (),
            error_counts=dict(findings),
            findings=findings,
            steps_used=len(steps),
            filters_failed=() if passed else ("success",),
            passed=passed,
        ),
        timing=Timing(wall_s=11.8, model_s=11.2, engine_s=0.01),
    )
