"""Modal dialogs (ModalScreen[T]) that return one value with `dismiss(value)`."""
