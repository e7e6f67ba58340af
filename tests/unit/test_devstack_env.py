"""The dev stack's environment: .chalice/config.json's local stage, with the developer's PHOTOSKY_* settings on top."""

from __future__ import annotations

from devstack.__main__ import STACK_VARIABLES, stage_environment
from tests.conftest import stage_environment as config_file_environment

CONFIG = config_file_environment("local")


def test_the_config_file_is_the_default() -> None:
    assert stage_environment(CONFIG, {"HOME": "/home/dev", "PATH": "/bin"}) == CONFIG


def test_a_photosky_setting_in_the_environment_wins_over_the_config_file() -> None:
    # PHOTOSKY_QUOTA_PHOTOS=2 make dev used to run with the file's 10000.
    assert CONFIG["PHOTOSKY_QUOTA_PHOTOS"] == "10000"
    env = stage_environment(CONFIG, {"PHOTOSKY_QUOTA_PHOTOS": "2", "PHOTOSKY_MAX_UPLOAD_BYTES": "1000"})
    assert env["PHOTOSKY_QUOTA_PHOTOS"] == "2"
    assert env["PHOTOSKY_MAX_UPLOAD_BYTES"] == "1000"
    assert env["PHOTOSKY_QUOTA_BYTES"] == CONFIG["PHOTOSKY_QUOTA_BYTES"]


def test_settings_the_file_does_not_name_come_from_the_environment_too() -> None:
    assert stage_environment(CONFIG, {"PHOTOSKY_DOWNLOAD_URL_SECONDS": "60"})["PHOTOSKY_DOWNLOAD_URL_SECONDS"] == "60"


def test_an_empty_variable_does_not_override() -> None:
    assert stage_environment(CONFIG, {"PHOTOSKY_QUOTA_PHOTOS": " "}) == CONFIG


def test_the_names_of_the_stacks_own_resources_and_stage_cannot_be_overridden() -> None:
    developer = dict.fromkeys(STACK_VARIABLES, "someone-elses")
    assert stage_environment(CONFIG, developer) == CONFIG
    assert {"PHOTOSKY_STAGE", "TABLE_NAME", "BUCKET_NAME", "UPLOADS_QUEUE_NAME"} <= STACK_VARIABLES


def test_only_photosky_variables_are_taken() -> None:
    assert "AWS_REGION" not in stage_environment(CONFIG, {"AWS_REGION": "eu-west-1"})
