"""Keys gafferd's WSGI handler adds to the environ, shared by the server and the API.

The server sets them and the API reads them; neither imports the other for it.
"""

#: The client's socket: feeds peek at it to notice a client that left (``api.disconnect``).
SOCKET_KEY = "gaffer.socket"
#: The common name of a verified client certificate (mTLS), absent without one.
CLIENT_SUBJECT_KEY = "gaffer.client_subject"
