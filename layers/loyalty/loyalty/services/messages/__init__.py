"""Messages (消息中心, issue 15): templates, a program's settings, the senders (SNS, SES, signed webhooks), sending
once by business key with its send record, notifications from the bus and from day indexes, and the records
as operators read them. The rules a message must pass are pure, in domain/messages.py."""
