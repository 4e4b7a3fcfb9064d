"""Boot configuration readers: each turns a config found on the guest disk into a `Menu`."""
