"""Auth is declared on the routes, so it is in the swagger ``chalice deploy`` itself uploads: the
stage never serves a route without SigV4, not even between deploy and post-deploy."""

from __future__ import annotations

from chalice.deploy.swagger import SwaggerGenerator

from app import app


def test_chalices_own_swagger_requires_sigv4_on_every_route() -> None:
    swagger = SwaggerGenerator("us-east-1", {"api_handler_arn": "arn:handler"}).generate_swagger(
        app
    )
    scheme = swagger["securityDefinitions"]["sigv4"]
    assert scheme["x-amazon-apigateway-authtype"] == "awsSigv4"
    operations = {
        (method, path): op
        for path, ops in swagger["paths"].items()
        for method, op in ops.items()
        if method != "options"
    }
    assert len(operations) == 6
    unsecured = [key for key, op in operations.items() if op.get("security") != [{"sigv4": []}]]
    assert unsecured == []


def test_the_rehearsals_import_reads_that_as_aws_iam() -> None:
    """scripts/moto_gaps imports Chalice's swagger into moto for the rehearsal; it must map the
    routes' scheme to AWS_IAM as API Gateway does, or the post-deploy check could not pass."""
    from scripts import moto_gaps

    swagger = SwaggerGenerator("us-east-1", {"api_handler_arn": "arn:handler"}).generate_swagger(
        app
    )
    types = {
        moto_gaps.authorization_type(swagger, op)
        for ops in swagger["paths"].values()
        for method, op in ops.items()
        if method != "options"
    }
    assert types == {"AWS_IAM"}
    assert moto_gaps.authorization_type(swagger, {}) == "NONE"
