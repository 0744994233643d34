"""Settings under which ``import app`` builds a deployed (aws) stage offline: the import-cost
benchmark and the import test both load the app this way, with names no AWS call ever uses."""

AWS_ENV = {
    "SWEEP_BACKEND": "aws",
    "SWEEP_BUCKET": "b",
    "SWEEP_WORKER_FUNCTION": "w",
    "SWEEP_DISPATCHER_FUNCTION": "d",
    "SWEEP_GLUE_DATABASE": "g",
    "AWS_DEFAULT_REGION": "us-east-1",
}
