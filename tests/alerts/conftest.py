"""Alert tests use the shared Slack-compatible receiver: ``tests/fixtures/slack.py``
(registered in ``tests/conftest.py``), e.g. ``async def test_x(slack_receiver): ...``."""
