"""Telephony adapter: AMI connections, the AMI <-> routing codec, and the AMI simulator."""
