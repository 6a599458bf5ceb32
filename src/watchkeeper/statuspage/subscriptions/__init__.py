"""Subscribers of the public status page: email addresses with double opt-in and webhook
URLs added by admins, told about incidents and maintenance through the durable outbox.

- `config`: the `status_subscriptions:` section;
- `tokens`: the signed confirm and unsubscribe tokens (never stored);
- `pages`: which pages (and components) one may subscribe to;
- `messages`: the mails and webhook bodies, as pure functions;
- `senders`: the outbox's two channels for subscribers (SMTP and HTTP POST, reused from
  `notify.channels`);
- `notifier`: `SubscriberNotifier`, the status page's `StatusEventSink`;
- `expiry`: the housekeeping job that deletes addresses never confirmed.
"""
