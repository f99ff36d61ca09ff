"""The one message builder: what every srjobs message carries."""

from shared.dispatch import RUN_ID_OPTION, build_message


def test_a_run_message_carries_its_run_id_and_dramatiq_options():
    message = build_message("job_a", "default", 42, retries=2)
    assert (message.actor_name, message.queue_name) == ("job_a", "default")
    assert message.options == {RUN_ID_OPTION: 42, "retries": 2}
    assert (message.args, message.kwargs) == ((), {})


def test_a_message_without_a_run_id_has_none_and_keeps_its_arguments():
    message = build_message("job_b", "q", None, args=(1,), kwargs={"k": "v"})
    assert RUN_ID_OPTION not in message.options
    assert (message.args, message.kwargs) == ((1,), {"k": "v"})
