"""SIP/RTP adapters (pjsua2 lives only in pjsua_agent, imported inside media worker processes)."""
