"""The UserStateStore contract on every adapter."""
