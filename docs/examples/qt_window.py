"""A Qt window that shows the latest message of a stream."""

from PySide6.QtWidgets import QApplication, QLabel

from ssesync import EventSource, dispatchers


class MessageLabel(QLabel):
    """Shows the latest message; closing the window closes the stream."""

    def __init__(self, url):
        super().__init__("waiting…")
        # Made on the GUI thread, once the QApplication exists.
        self.source = EventSource(url, dispatcher=dispatchers.qt())
        self.source.on("message", self.show_message)
        self.source.start()

    def show_message(self, event):   # on the GUI thread: Qt is safe here
        self.setText(event.data)

    def closeEvent(self, event):
        self.source.close()          # returns promptly, even mid-flood
        super().closeEvent(event)


if __name__ == "__main__":
    app = QApplication([])
    window = MessageLabel("http://localhost:8000/stream")
    window.show()
    app.exec()
