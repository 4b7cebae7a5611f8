"""`regula run --local`: the Regula pipeline run on this machine (the demo data, moto, the console lines and the
report); the generic runner of any SageMaker definition is engine/."""
