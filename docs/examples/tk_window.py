"""A Tk window that shows the latest message of a stream."""

import tkinter as tk

from ssesync import EventSource, dispatchers


def open_window(url):
    root = tk.Tk()
    root.title("Latest message")
    label = tk.Label(root, text="waiting…", width=40)
    label.pack(padx=20, pady=20)

    # Made on the Tk thread: it runs the handlers there.
    source = EventSource(url, dispatcher=dispatchers.tk(root))

    @source.on("message")
    def show(event):                 # on the Tk thread: Tk is safe here
        label.config(text=event.data)

    def close_window():
        source.close()               # returns promptly, even mid-flood
        root.destroy()

    root.protocol("WM_DELETE_WINDOW", close_window)
    source.start()
    return root


if __name__ == "__main__":
    open_window("http://localhost:8000/stream").mainloop()
