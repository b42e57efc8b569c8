"""Read models shared by the screens and the headless `report` command."""
