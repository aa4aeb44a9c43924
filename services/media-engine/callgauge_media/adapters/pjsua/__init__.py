"""SIP/RTP adapters on pjsua2: the endpoint, registration, caller, call media and responder
modules import pjsua2, and are imported only inside media worker and responder processes."""
