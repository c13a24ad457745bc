"""Gatehouse audit subscriber: stores every event of the bus in MongoDB; ``tail`` shows them."""
