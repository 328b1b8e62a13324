"""A minimal keyboard robot for the GUI test (runs INSIDE the chroot with its python3; stdlib ctypes + libX11).

    python3 xkeys.py TITLE_PREFIX KEY [TIMEOUT_S]

Waits for a top-level X window whose name starts with TITLE_PREFIX, then sends it a KeyPress/KeyRelease of
KEY (an X keysym name, e.g. Return or Escape) with XSendEvent, again every 2 s until the window is gone.
Prints what it did; exit 1 if no such window appeared and went away in time. X errors about windows that
vanished mid-walk are ignored. (The chroot has no
xdotool/XTest; GTK accepts these synthetic key events when GIMP runs with GDK_CORE_DEVICE_EVENTS=1.)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import time

x11 = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
Window = ctypes.c_ulong
x11.XOpenDisplay.restype = ctypes.c_void_p
x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
x11.XDefaultRootWindow.restype = Window
x11.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
x11.XQueryTree.argtypes = [ctypes.c_void_p, Window, ctypes.POINTER(Window), ctypes.POINTER(Window),
                           ctypes.POINTER(ctypes.POINTER(Window)), ctypes.POINTER(ctypes.c_uint)]
x11.XFetchName.argtypes = [ctypes.c_void_p, Window, ctypes.POINTER(ctypes.c_void_p)]
x11.XStringToKeysym.restype = ctypes.c_ulong
x11.XStringToKeysym.argtypes = [ctypes.c_char_p]
x11.XKeysymToKeycode.restype = ctypes.c_ubyte
x11.XKeysymToKeycode.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
x11.XSendEvent.argtypes = [ctypes.c_void_p, Window, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
x11.XFlush.argtypes = [ctypes.c_void_p]
x11.XSetInputFocus.argtypes = [ctypes.c_void_p, Window, ctypes.c_int, ctypes.c_ulong]
x11.XFree.argtypes = [ctypes.c_void_p]
ERROR_HANDLER = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
x11.XSetErrorHandler.argtypes = [ERROR_HANDLER]
x11.XSetErrorHandler.restype = ctypes.c_void_p


@ERROR_HANDLER
def ignore_x_error(_dpy, _event) -> int:
    """Windows come and go while we walk the tree (GTK maps and unmaps helpers all the time): a request on a
    window that vanished gets BadWindow, and Xlib's default handler would end the process. Skip it instead."""
    return 0


class XKeyEvent(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                ("display", ctypes.c_void_p), ("window", Window), ("root", Window), ("subwindow", Window),
                ("time", ctypes.c_ulong), ("x", ctypes.c_int), ("y", ctypes.c_int), ("x_root", ctypes.c_int),
                ("y_root", ctypes.c_int), ("state", ctypes.c_uint), ("keycode", ctypes.c_uint),
                ("same_screen", ctypes.c_int)]


class XEvent(ctypes.Union):
    _fields_ = [("key", XKeyEvent), ("pad", ctypes.c_long * 24)]


KEY_PRESS, KEY_RELEASE = 2, 3
KEY_PRESS_MASK, KEY_RELEASE_MASK = 1, 2


def windows(dpy, win):
    root, parent = Window(), Window()
    children = ctypes.POINTER(Window)()
    n = ctypes.c_uint()
    if not x11.XQueryTree(dpy, win, ctypes.byref(root), ctypes.byref(parent), ctypes.byref(children),
                          ctypes.byref(n)):
        return
    kids = [children[i] for i in range(n.value)]
    if children:
        x11.XFree(children)
    for k in kids:
        yield k
        yield from windows(dpy, k)


def name_of(dpy, win) -> str:
    p = ctypes.c_void_p()
    if not x11.XFetchName(dpy, win, ctypes.byref(p)) or not p.value:
        return ""
    name = ctypes.string_at(p.value).decode("utf-8", "replace")
    x11.XFree(p)
    return name


def main(argv: list[str]) -> int:
    prefix, key = argv[1], argv[2]
    timeout = float(argv[3]) if len(argv) > 3 else 60.0
    x11.XSetErrorHandler(ignore_x_error)
    dpy = x11.XOpenDisplay(None)
    if not dpy:
        print("xkeys: cannot open the display", flush=True)
        return 1
    root = x11.XDefaultRootWindow(dpy)
    deadline = time.monotonic() + timeout
    sent = 0
    while time.monotonic() < deadline:
        found = [w for w in windows(dpy, root) if name_of(dpy, w).startswith(prefix)]
        if not found and sent:
            print(f"xkeys: sent {key} {sent} time(s); the window {prefix!r} is gone", flush=True)
            return 0
        if found:
            time.sleep(1.0)  # let GTK finish mapping and realising the dialog
            win = found[0]
            x11.XSetInputFocus(dpy, win, 1, 0)  # RevertToPointerRoot, CurrentTime
            code = x11.XKeysymToKeycode(dpy, x11.XStringToKeysym(key.encode()))
            for kind, mask in ((KEY_PRESS, KEY_PRESS_MASK), (KEY_RELEASE, KEY_RELEASE_MASK)):
                ev = XEvent()
                ev.key = XKeyEvent(type=kind, send_event=1, display=dpy, window=win, root=root, subwindow=0,
                                   time=0, x=1, y=1, x_root=1, y_root=1, state=0, keycode=code, same_screen=1)
                x11.XSendEvent(dpy, win, 1, mask, ctypes.byref(ev))
            x11.XFlush(dpy)
            sent += 1
            time.sleep(2.0)  # a busy machine may not have been ready for the key: send again if still there
            continue
        time.sleep(0.3)
    print(f"xkeys: no window named {prefix!r}* within {timeout:.0f} s", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
