"""The integration harness gives every test the embedded AWS as provisioning left it."""

from __future__ import annotations

import pytest


@pytest.fixture
def secrets(aws):
    return aws.client("secretsmanager")


def signing_keys_name(aws) -> str:
    return f"{aws.settings.resource_prefix}/signing-keys"


def test_a_rotated_secret_is_provisioned_again_after_the_test(aws, secrets):
    name = signing_keys_name(aws)
    provisioned = secrets.get_secret_value(SecretId=name)["SecretString"]
    secrets.put_secret_value(SecretId=name, SecretString='{"current": "k9", "k9": "rotated"}')

    aws._clean()  # what the teardown of the test does

    assert secrets.get_secret_value(SecretId=name)["SecretString"] == provisioned
    with pytest.raises(secrets.exceptions.ResourceNotFoundException):
        # the rotated value is not kept as the previous version either
        secrets.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")


def test_a_secret_a_test_created_is_gone_after_it(aws, secrets):
    secrets.create_secret(Name="qphb-harness/only-this-test", SecretString="x")

    aws._clean()

    names = {s["Name"] for s in secrets.list_secrets()["SecretList"]}
    assert "qphb-harness/only-this-test" not in names
    assert signing_keys_name(aws) in names


def test_a_parameter_a_test_wrote_is_gone_after_it(aws):
    ssm = aws.client("ssm")
    ssm.put_parameter(Name="/qphb-harness/only-this-test", Value="x", Type="String")

    aws._clean()

    with pytest.raises(ssm.exceptions.ParameterNotFound):
        ssm.get_parameter(Name="/qphb-harness/only-this-test")
