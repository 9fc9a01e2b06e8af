"""Messages (消息中心, issue 15): templates now; the sender, its records and the notifications to come.
The rules a message must pass are pure, in domain/messages.py."""
