"""An emulated Android phone for tests and demos: a fake adb server and a host runner."""
