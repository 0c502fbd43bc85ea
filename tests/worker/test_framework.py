"""The framework's private names `agent.framework` reaches are still there, in the version it was written against."""

from __future__ import annotations

import inspect
import ssl
from importlib.metadata import version

from livekit.agents.cli import cli as framework_cli
from livekit.agents.cli import proto
from livekit.agents.utils import http_context

from agent import framework


def test_the_installed_livekit_agents_is_the_version_the_private_calls_were_checked_against() -> None:
    # On an upgrade: re-read each private name below in the new release, then move FRAMEWORK_VERSION.
    assert version("livekit-agents") == framework.FRAMEWORK_VERSION


def test_the_tls_context_of_the_shared_http_session_is_built_by_the_private_factory() -> None:
    assert isinstance(http_context._create_ssl_context(), ssl.SSLContext)
    framework.warm_tls()


def test_the_worker_runner_takes_a_server_and_the_cli_arguments_the_framework_builds() -> None:
    parameters = list(inspect.signature(framework_cli._run_worker).parameters)
    assert parameters == ["server", "args"]
    fields = set(inspect.signature(proto.CliArgs).parameters)
    assert {"log_level", "log_format", "dev"} <= fields
