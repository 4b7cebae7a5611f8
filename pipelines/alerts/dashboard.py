"""The CloudWatch dashboard of a pipeline's runs: losses and gap per epoch, quality, what the ladder decided, and the
alarms. One body for `regula alerts apply` and for the CloudFormation template (there the region and alarm ARNs are
`Fn::Sub` placeholders)."""

from __future__ import annotations

from typing import Protocol


class Names(Protocol):
    """What the dashboard needs of an AlertSpec (pipelines/alerts/resources.py, which imports this module)."""

    namespace: str
    pipeline_name: str


def dashboard(spec: Names, region: str, alarm_arns: list[str]) -> dict:
    def metric_widget(title: str, metrics: list[str], x: int, y: int) -> dict:
        return {
            "type": "metric",
            "x": x,
            "y": y,
            "width": 12,
            "height": 6,
            "properties": {
                "title": title,
                "region": region,
                "view": "timeSeries",
                "stat": "Average",
                "period": 60,
                "metrics": [[spec.namespace, m, "Pipeline", spec.pipeline_name] for m in metrics],
            },
        }

    return {
        "widgets": [
            metric_widget("Loss per epoch", ["TrainingLoss", "ValidationLoss"], 0, 0),
            metric_widget("Generalization gap per epoch", ["GeneralizationGap"], 12, 0),
            metric_widget(
                "Validation quality",
                ["ValidationAccuracy", "ValidationR2", "FinalValidationQuality", "TestQuality"],
                0,
                6,
            ),
            metric_widget(
                "Evaluated gap per round, overfitting signal and stops, runs that gave up",
                [
                    "FinalGeneralizationGap",
                    "ValLossRiseStreak",
                    "OverfittingSignal",
                    "StoppedForOverfitting",
                    "RunGaveUp",
                ],
                12,
                6,
            ),
            {
                "type": "alarm",
                "x": 0,
                "y": 12,
                "width": 24,
                "height": 3,
                "properties": {"title": "Alarms", "alarms": alarm_arns},
            },
        ]
    }
