"""`regula iam`: least-privilege policies for the execution role and the CI role, from the rendered definition."""
