"""`lamsim pack from-openapi` on the Swagger Petstore OpenAPI 3.0 description (tests/data/petstore.yaml)
and on small specs that exercise the corners: the generated pack loads, passes `lamsim check`, runs
headless, and its tools behave like the API they were made from."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lamsim_tui.packs import load_pack
from lamsim_tui.simulator.actions import ToolCall
from lamsim_tui.simulator.runner import ToolRunner

LAMSIM = str(Path(sys.executable).parent / "lamsim")
PETSTORE = Path(__file__).resolve().parent / "data" / "petstore.yaml"
OPERATIONS = ["updatePet", "addPet", "findPetsByStatus", "findPetsByTags", "getPetById", "updatePetWithForm",
              "deletePet", "uploadFile", "getInventory", "placeOrder", "getOrderById", "deleteOrder", "createUser",
              "createUsersWithListInput", "loginUser", "logoutUser", "getUserByName", "updateUser", "deleteUser"]


def lamsim(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([LAMSIM, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("api")
    done = lamsim(root, "pack", "from-openapi", str(PETSTORE), "petstore")
    assert done.returncode == 0, done.stderr
    assert "19 tools: updatePet, addPet" in done.stdout
    assert "1 example template: pet_name" in done.stdout
    return root


@pytest.fixture(scope="module")
def pack(project):
    return load_pack(project / "tools" / "petstore")


class Api:
    """Calls tools the way the agent does (argument checks, then the tool), on one sandbox."""

    def __init__(self, pack):
        self.runner = ToolRunner(pack)
        self.sb = pack.new_sandbox()

    def __call__(self, tool: str, **args):
        outcome = self.runner.execute_sync(self.sb, ToolCall(tool=tool, arguments=args))
        if not outcome.ok:
            return {"error": [f.code for f in outcome.findings], "message": outcome.findings[0].message}
        return outcome.result


def test_every_operation_is_a_tool_named_by_its_operation_id(pack):
    assert list(pack.tools) == OPERATIONS
    assert pack.tools["getPetById"].description == "Find pet by ID"
    assert pack.tools["uploadFile"].description == "Uploads an image"
    writers = {t.name for t in pack.tools.values() if t.changes_state}
    assert writers == {"updatePet", "addPet", "updatePetWithForm", "deletePet", "placeOrder", "deleteOrder",
                       "createUser", "createUsersWithListInput", "updateUser", "deleteUser"}


def test_parameters_and_bodies_become_argument_schemas(pack):
    schema = {name: spec.parameters for name, spec in pack.tools.items()}
    status = schema["findPetsByStatus"]["properties"]["status"]
    assert status["enum"] == ["available", "pending", "sold"] and status["default"] == "available"
    assert schema["findPetsByStatus"]["required"] == []
    assert schema["findPetsByTags"]["properties"]["tags"] == {"type": "array", "items": {"type": "string"},
                                                              "description": "Tags to filter by"}
    get_pet = schema["getPetById"]
    assert get_pet["properties"]["petId"]["type"] == "integer" and get_pet["required"] == ["petId"]
    assert get_pet["additionalProperties"] is False
    # a JSON body's properties, with $refs resolved inline and xml/example noise dropped
    add = schema["addPet"]
    assert add["required"] == ["name", "photoUrls"]
    assert add["properties"]["category"] == {"type": "object", "properties": {"id": {"type": "integer"},
                                                                              "name": {"type": "string"}}}
    assert "$ref" not in json.dumps(schema) and "xml" not in json.dumps(schema)
    # header parameter; binary upload body dropped
    assert set(schema["deletePet"]["properties"]) == {"api_key", "petId"}
    assert set(schema["uploadFile"]["properties"]) == {"petId", "additionalMetadata"}
    # body properties clash with the path parameter `username`: the body is one argument
    update_user = schema["updateUser"]
    assert set(update_user["properties"]) == {"username", "body"}
    assert update_user["properties"]["body"]["properties"]["email"] == {"type": "string"}
    assert schema["createUsersWithListInput"]["properties"]["body"]["type"] == "array"


def test_resources_become_seed_tables_with_foreign_keys(project, pack):
    assert {t: len(rows) for t, rows in pack.seed.tables.items()} == {"pet": 12, "order": 12, "user": 12}
    pets = pack.seed.tables["pet"]
    assert {p["status"] for p in pets.values()} == {"available", "pending", "sold"}
    assert all(o["petId"] in pets for o in pack.seed.tables["order"].values())
    assert pack.seed.tables["user"][1]["username"] == "theUser1"
    manifest = (project / "tools" / "petstore" / "pack.yaml").read_text()
    assert "pet: {file: data/pet.json, key: id}" in manifest
    assert (project / "tools" / "petstore" / "openapi.yaml").read_bytes() == PETSTORE.read_bytes()


def test_store_backed_operations_read_and_write(pack):
    api = Api(pack)
    assert api("getPetById", petId=3)["name"] == "doggie3"
    assert api("getPetById", petId=99) == {"error": ["exec.error"], "message": "getPetById failed: Pet not found"}
    sold = api("findPetsByStatus", status="sold")
    assert sold and {p["status"] for p in sold} == {"sold"}
    assert {p["status"] for p in api("findPetsByStatus")} == {"available"}  # the spec's default
    tagged = api("findPetsByTags", tags=["tag2"])
    assert tagged and all(any(t["name"] == "tag2" for t in p["tags"]) for p in tagged)

    added = api("addPet", name="Rex", photoUrls=["rex.jpg"], status="available")
    assert added["id"] == 13
    assert api("getPetById", petId=13)["name"] == "Rex"
    assert api("updatePetWithForm", petId=13, status="sold")["status"] == "sold"
    assert api("updatePet", id=13, name="Rex II", photoUrls=[])["name"] == "Rex II"
    assert api("deletePet", petId=13)["deleted"] is True
    assert api("getPetById", petId=13)["error"] == ["exec.error"]

    order = api("placeOrder", petId=2, quantity=1, status="placed")
    assert api("getOrderById", orderId=order["id"])["petId"] == 2
    api("updateUser", username="theUser2", body={"email": "new@example.com"})
    assert api("getUserByName", username="theUser2")["email"] == "new@example.com"
    created = api("createUsersWithListInput", body=[{"username": "ann"}, {"username": "bob"}])
    assert [u["id"] for u in created] == [13, 14]

    changes = api.sb.changes()
    assert set(changes) == {"order", "user"}  # the pet was added, then deleted again
    assert pack.new_sandbox().changes() == {}
    assert pack.seed.tables["user"][2]["email"] == "john2@email.com"


def test_other_operations_answer_with_example_responses(pack):
    api = Api(pack)
    assert api("loginUser", username="theUser1", password="x") == "successful operation"
    assert api("logoutUser")["ok"] is True
    inventory = api("getInventory")
    assert isinstance(inventory, dict) and all(isinstance(v, int) for v in inventory.values())
    assert set(api("uploadFile", petId=1)) == {"code", "type", "message"}


def test_agent_mistakes_are_caught_by_the_generated_schemas(pack):
    api = Api(pack)
    assert api("getPetById", petId="three")["error"] == ["args.type"]
    assert api("findPetsByStatus", status="lost")["error"] == ["args.enum"]
    assert api("addPet", name="Rex")["error"] == ["args.missing"]
    assert api("getPetById", petId=1, verbose=True)["error"] == ["args.unexpected"]
    assert api("updatePet", name="x", photoUrls=[])["message"].endswith("give id to say which pet is meant")


def test_generated_pack_passes_check_and_runs_headless(project):
    done = lamsim(project, "check", "sessions/petstore.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pack petstore" in done.stdout and "19 tools, 1 template, tables pet 12, order 12, user 12" in done.stdout
    assert "all 1 template passed" in done.stdout and "narrow" not in done.stdout
    done = lamsim(project, "run", "sessions/petstore.yaml", "--headless", "--agent", "scripted", "--json",
                  "--store", "stores/petstore")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["episodes"] == 10 and summary["success_rate"] >= 0.8


def test_generated_code_is_readable_python(project):
    code = (project / "tools" / "petstore" / "tools.py").read_text()
    assert "# GET /pet/{petId}: get (pet)" in code
    assert "def get_pet_by_id(sb: Sandbox, **args):" in code
    assert "return api.get_row(sb, 'pet', {'id': args.get('petId')}, missing='Pet not found')" in code
    assert "return api.example(EXAMPLES, 'loginUser')" in code
    compile(code, "tools.py", "exec")
    templates = (project / "tools" / "petstore" / "templates.py").read_text()
    assert "call('getPetById', petId=slots['petId'])['name']" in templates


SMALL = """\
openapi: 3.0.0
info: {title: Widgets, version: "2"}
paths:
  /widgets/{widgetId}:
    parameters:
      - $ref: "#/components/parameters/WidgetId"
    get:
      summary: ''
      description: Fetch one widget. More words that the tool description leaves out.
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Widget"}
    put:
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: "#/components/schemas/Widget"}
      responses:
        "200": {description: ok}
  /status:
    get:
      operationId: finish
      responses:
        "200":
          description: ok
          content:
            application/json:
              examples:
                up: {value: {state: green}}
components:
  parameters:
    WidgetId: {name: widgetId, in: path, required: true, schema: {type: string}}
  schemas:
    Widget:
      type: object
      properties:
        widgetId: {type: string, example: w}
        colour: {type: string, nullable: true, enum: [red, blue]}
        size: {allOf: [{type: integer}, {minimum: 1}]}
"""


def test_small_spec_without_operation_ids(tmp_path):
    (tmp_path / "spec.yaml").write_text(SMALL)
    done = lamsim(tmp_path, "pack", "from-openapi", "spec.yaml", "widgets", "--rows", "10")
    assert done.returncode == 0, done.stderr
    pack = load_pack(tmp_path / "tools" / "widgets")
    assert list(pack.tools) == ["get_widgets_by_widgetId", "put_widgets_by_widgetId", "finish_op"]
    assert pack.tools["get_widgets_by_widgetId"].description == "Fetch one widget."
    put = pack.tools["put_widgets_by_widgetId"].parameters
    assert set(put["properties"]) == {"widgetId", "body"}  # body property clashes with the path parameter
    assert put["properties"]["body"]["properties"]["colour"]["type"] == ["string", "null"]
    assert put["properties"]["body"]["properties"]["size"] == {"type": "integer", "minimum": 1}
    assert len(pack.seed.tables["widget"]) == 10
    api = Api(pack)
    assert api("finish_op") == {"state": "green"}
    api("put_widgets_by_widgetId", widgetId="w3", body={"colour": "red"})
    assert api("get_widgets_by_widgetId", widgetId="w3")["colour"] == "red"
    done = lamsim(tmp_path, "check", "sessions/widgets.yaml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_spec_with_nothing_to_look_up_gets_a_one_call_template(tmp_path):
    (tmp_path / "spec.json").write_text(json.dumps({
        "openapi": "3.1.0", "info": {"title": "Clock", "version": "1"},
        "paths": {"/time": {"get": {"operationId": "now", "summary": "Current time", "responses": {
            "200": {"description": "ok", "content": {"application/json": {"example": {"time": "12:00"}}}}}}}}}))
    done = lamsim(tmp_path, "pack", "from-openapi", "spec.json", "clock")
    assert done.returncode == 0, done.stderr
    done = lamsim(tmp_path, "check", "sessions/clock.yaml")
    assert done.returncode == 0, done.stdout
    assert '=> {"time": "12:00"}' in done.stdout and "only 1 distinct tasks" in done.stdout


@pytest.mark.parametrize("text, message", [
    ("swagger: '2.0'\ninfo: {title: x}\npaths: {}\n", "this is a Swagger 2.0 document; lamsim reads OpenAPI 3"),
    ("name: not a spec\n", "not an OpenAPI 3 document"),
    ("openapi: 3.0.0\npaths: {}\n", "the document has no paths"),
    ("openapi: 3.0.0\npaths:\n  /a:\n    get:\n      parameters: [{$ref: 'other.yaml#/p'}]\n",
     "external $ref 'other.yaml#/p' is not supported"),
    ("openapi: 3.0.0\npaths: [\n", "invalid YAML"),
])
def test_bad_specs_are_user_errors(tmp_path, text, message):
    (tmp_path / "spec.yaml").write_text(textwrap.dedent(text))
    done = lamsim(tmp_path, "pack", "from-openapi", "spec.yaml", "bad")
    assert done.returncode == 2, done.stdout
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "tools" / "bad").exists() and not (tmp_path / "sessions" / "bad.yaml").exists()


def test_missing_spec_and_existing_pack(tmp_path, project):
    done = lamsim(tmp_path, "pack", "from-openapi", "nope.yaml", "x")
    assert done.returncode == 2 and "OpenAPI file not found: nope.yaml" in done.stderr
    done = lamsim(project, "pack", "from-openapi", str(PETSTORE), "petstore")
    assert done.returncode == 2 and "tools/petstore already exists" in done.stderr
