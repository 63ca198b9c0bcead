"""Delivery providers: one small adapter per way out (SMTP relay, print queue, and the SMPP,
mailbox and Peppol access point adapters), all behind `base.Provider`."""
