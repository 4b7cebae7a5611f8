"""Alerts worth an email: the SNS topic, alarms, rules and dashboard (resources.py, dashboard.py), and the same as a
CloudFormation template."""
