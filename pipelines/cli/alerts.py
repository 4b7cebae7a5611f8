"""`regula alerts apply | show | template`: the team's alerts (the work is in alerts/resources.py and
alerts/template.py)."""

from __future__ import annotations

import argparse

from pipelines.alerts.resources import DEFAULT_EMAIL_ON, EVENTS
from pipelines.cli.shared import client, print_json, settings_from
from steps.defaults import METRICS_NAMESPACE, MODEL_PACKAGE_GROUP


def cmd_alerts(args: argparse.Namespace) -> int:
    from pipelines.alerts import resources as alerts

    spec = alerts.AlertSpec(
        pipeline_name=settings_from(args).pipeline_name,
        namespace=args.namespace,
        model_package_group=args.group,
        kms_key_id=args.kms_key_id,
        email_on=tuple(args.email_on) if args.email_on else DEFAULT_EMAIL_ON,
    )
    if args.action == "template":
        from pipelines.alerts.template import cloudformation

        print_json(cloudformation(spec, args.email or []))
        return 0
    if args.action == "apply":
        account = client(args, "sts").get_caller_identity()["Account"]
        sns, cloudwatch, events = (client(args, name) for name in ("sns", "cloudwatch", "events"))
        alerts.apply(spec, args.email or [], sns, cloudwatch, events, account, settings_from(args).region)
        return 0
    shown = alerts.show(spec, client(args, "sns"), client(args, "cloudwatch"), client(args, "events"))
    if args.json:
        print_json(shown)
        return 0
    print(f"topic: {shown['topic_arn']}")
    for sub in shown["subscriptions"]:
        print(f"  {sub['email']}: {'confirmed' if sub['confirmed'] else 'pending confirmation'}")
    pending = [sub["email"] for sub in shown["subscriptions"] if not sub["confirmed"]]
    if pending:
        print(f"  {len(pending)} still to confirm (AWS emailed each a link): {', '.join(pending)}")
    for event in shown["events"]:
        print(f"{event['event']}: {'emails the team' if event['emails'] else 'no email'} ({event['via']})")
    if shown["approval_decisions_email"]:
        print(f"approval decisions: emails the team (rule {spec.rule_name})")
    for alarm in shown["alarms"]:
        emails = "emails the team" if alarm["emails"] else "dashboard only"
        print(f"alarm {alarm['name']}: {alarm['state']} ({alarm['metric']} >= {alarm['threshold']:g}, {emails})")
    print(f"dashboard: {shown['dashboard']}")
    return 0


def add_parsers(commands) -> None:
    alerts = commands.add_parser("alerts", help="overfitting alarms emailed to the team")
    alert_actions = alerts.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (
        ("apply", "create or update topic, subscriptions, alarms, dashboard"),
        ("show", "what is set up, and the alarm states"),
        ("template", "print the same resources as a CloudFormation template"),
    ):
        sub = alert_actions.add_parser(action, help=text)
        sub.add_argument("--pipeline-name")
        sub.add_argument("--region")
        if action != "show":
            sub.add_argument("--email", action="append", help="team member's address, repeatable")
            sub.add_argument(
                "--email-on",
                action="append",
                choices=EVENTS,
                metavar="EVENT",
                help=f"what emails the team, repeatable, only these when given: {', '.join(EVENTS)} (default: "
                f"{', '.join(DEFAULT_EMAIL_ON)}; docs/alerts.md)",
            )
        else:
            sub.add_argument("--json", action="store_true")
        sub.add_argument("--namespace", default=METRICS_NAMESPACE, help="CloudWatch namespace of the metrics")
        if action != "show":
            sub.add_argument("--kms-key-id", help="customer-managed KMS key for the topic (template: one is created)")
        sub.add_argument("--group", default=MODEL_PACKAGE_GROUP, help="model package group for approval events")
        sub.set_defaults(func=cmd_alerts, json=False, email=None, kms_key_id=None, email_on=None)
