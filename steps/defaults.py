"""Defaults and limits that the pipeline definition and the step scripts share, each beside the reason it is what it
is: declared once, here.

The parameter table (`steps/parameter_table.py`) gives the pipeline parameters these defaults and bounds, so the
definition and the step scripts' options have the same ones; the step code reads the rest. This file travels with
the step code into the containers, so both ends always agree.
"""

from __future__ import annotations

# -- data -----------------------------------------------------------------------------------------------------------
TARGET_COLUMN = "target"
PROBLEM_TYPES = ("auto", "classification", "regression")
VALIDATION_FRACTION = 0.2
TEST_FRACTION = 0.2
SEED = 42
# Image input (steps/images.py): a folder of class folders, or a manifest whose ImageColumn names each image's file.
IMAGE_COLUMN = ""  # empty: the input is class folders (or a table)
IMAGE_SIZE = 0  # the square side images are resized to; 0: the median shorter side, within the two bounds below
MIN_IMAGE_SIZE = 8
MAX_IMAGE_SIZE = 512
AUTO_IMAGE_SIZE_CAP = 64  # the size chosen from the data is at most this: larger images cost CPU training dearly
IMAGE_AUGMENTATIONS = ("none", "flip", "crop", "flip,crop")  # random flips and shifts, in training only (steps/cnn.py)
IMAGE_AUGMENTATION = "none"
# Time series (TimeColumn set, steps/series.py): steps ahead to forecast, and the season (0: inferred from the data)
HORIZON = 1
SEASON = 0
MAX_SEASON = 400  # the longest season inferred or accepted (a daily series' year fits)

# -- training -------------------------------------------------------------------------------------------------------
DROPOUT = 0.1
MAX_DROPOUT = 0.8  # the ladder moves dropout towards this, never reaching it
L1 = 1e-5
L2 = 0.01  # AdamW weight decay
GROWTH = 10.0  # the largest step of the regularization level per round (steps/regularization.py)
MIN_GROWTH = 1.5  # the smallest step: every round is strictly stronger than the one before
MAX_EPOCHS = 200
MAX_RUNTIME_SECONDS = 3600  # each job; SageMaker stops a job that runs longer
MAX_WAIT_SECONDS = 7200  # spot training: runtime plus waiting for capacity
PATIENCE = 10
# Early stopping also waits this many optimizer steps without improvement (0: epochs alone): on a small table an
# epoch is a few steps, and 10 epochs of patience a few dozen (issue 23). Chosen on the tuning tables' validation
# (benchmarks/train_options.py, docs/ladder.md); on large tables an epoch holds more steps than this, so it never binds.
PATIENCE_STEPS = 500
# ... and never stops early before this many optimizer steps in all (MaxEpochs still caps the epochs). Chosen alike.
MIN_STEPS = 1000
HIDDEN = "256,256"
# HiddenLayers' bounds: refused before any job, not after a billed one fails for memory (4096 x 4096 is 16.8M weights)
MAX_LAYER_SIZE = 4096
MAX_HIDDEN_LAYERS = 16
BASE_LEARNING_RATE = 1e-3  # at batch size 64; larger batches scale it by sqrt(batch / 64)
LEARNING_RATE = 0.0  # 0: BASE_LEARNING_RATE scaled to the batch size
BATCH_SIZE = 0  # 0: chosen from the training rows (train_args.auto_batch_size)
# Training keeps an exponential moving average of the weights (Polyak averaging), updated every optimizer step: the
# raw weights jitter around a minimum, their average sits nearer its centre. Each epoch the average is measured and
# kept, or the raw weights where their validation loss is lower (early in training the average lags behind them).
# Against the raw weights alone (benchmarks/weight_average.py; benchmarks/results/weight_average.json and
# weight_average_splits.json): it helped on the larger tables; on the small tables and the demo the results are the
# raw weights' (the average only overtakes them after early stopping has ended there). The average alone, without
# that choice, cost some small tables, so the choice stays. Nearby decays measured alike; 0: off.
AVERAGE_DECAY = 0.99
# Checkpoints (steps/checkpoint.py), for managed spot training and retries: SageMaker syncs CHECKPOINT_DIR with
# CheckpointConfig.S3Uri and copies it back into a restarted job, which resumes where the checkpoint left off.
CHECKPOINT_DIR = "/opt/ml/checkpoints"  # CheckpointConfig.LocalPath; ModelTrainer's driver sets no variable for it
CHECKPOINT_SECONDS = 60.0  # at most one checkpoint per this many seconds of training, at the end of an epoch
# Class weighting, applied where it was measured to work: in the decision, not the loss. "balanced" predicts the class
# with the highest probability divided by its training share (the Bayes rule for balanced accuracy); probabilities stay
# calibrated and the gap stays a plain cross-entropy gap. On tables with 6% / 24% positives it raised test balanced
# accuracy from 0.55 / 0.66 to 0.75 / 0.75, where a class-weighted loss reached 0.73 / 0.74 and overfit (gap 0.39).
# "auto": balanced when the quality metric is balanced accuracy or macro F1, else none.
CLASS_WEIGHTS = ("auto", "none", "balanced")
CLASS_WEIGHT = "auto"
# StopOnOverfitting: "yes" ends a training job once the overfitting condition (steps/overfitting.py) has held Patience
# epochs in a row, keeping its best weights. Off by default: early stopping already ends a job whose validation loss
# keeps rising; the stop adds only the case of a gap above MaxGap while the validation loss still improves.
STOP_ON_OVERFITTING_CHOICES = ("no", "yes")
STOP_ON_OVERFITTING = "no"
# Refit (steps/refit.py): "yes" retrains the round the ladder registers on the training and validation rows, for its
# best epoch count, before it is registered: +0.39 points of test quality over 20 tuning tables, ahead on 10 and
# behind on 2 (benchmarks/refit.py, benchmarks/results/refit_tuning.json). "no": the round's model as trained.
REFIT_CHOICES = ("yes", "no")
REFIT = "yes"

# -- the decision -----------------------------------------------------------------------------------------------------
# The generalization gap is relative: (validation loss - training loss) / the baseline's validation loss, where the
# baseline predicts the training split's class shares (classification) or mean (regression). One MaxGap means the
# same on 2 classes, 50 classes and regression.
MAX_GAP = 0.1
# Quality is measured with one metric, higher is better; "auto" is balanced accuracy (classification: meaningful on
# imbalanced labels) or R2 (regression). The model must beat the baseline on validation by MIN_LIFT, and reach
# MIN_QUALITY.
QUALITY_METRICS = ("auto", "balanced_accuracy", "accuracy", "macro_f1", "roc_auc", "r2")
QUALITY_METRIC = "auto"
MIN_LIFT = 0.05
MIN_QUALITY = 0.0
# When no round is accepted, the run fails and names the best round (by validation quality); "yes" also registers
# that round for review, marked as not accepted (regula:accepted=false), so a team can look at it.
REGISTER_CANDIDATE_CHOICES = ("no", "yes")
REGISTER_CANDIDATE = "no"
# A round whose gap is above MaxGap still passes when a regularized linear model of the same features and split has
# as large a gap and validates no better (steps/reference.py): on bags of n-grams every good model's gap is above 0.1.
# "none": MaxGap alone. Images have no reference.
GAP_REFERENCE_CHOICES = ("linear", "none")
GAP_REFERENCE = "linear"

# -- where things go ------------------------------------------------------------------------------------------------
METRICS_NAMESPACE = "Regula"
MODEL_PACKAGE_GROUP = "regula-models"
APPROVAL_STATUS = "PendingManualApproval"
