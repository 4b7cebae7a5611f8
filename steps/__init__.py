"""The step scripts that run inside the SageMaker containers, and the modules they share: one package, `steps`.

Every module imports its siblings as `steps.<name>`, here, in the tests and in the containers alike. The jobs get
the package as a folder named `steps/` beside their entry script (training: the code channel; processing: the lib
input, on PYTHONPATH), and the model artifact carries the serving modules as `code/steps/` beside `code/serve.py`.
"""
