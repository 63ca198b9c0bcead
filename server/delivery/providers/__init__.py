"""Delivery providers: one small adapter per way out, all behind `base.Provider`:

    smtp.py          e-mail to a relay (STARTTLS, AUTH, DKIM, VERP)
    printing.py      print pieces into the print queue
    smpp.py          SMS over SMPP 3.4 (smpp_session.py: the bound link; smpp_messages.py:
                     submit_sm parts and delivery receipts)
    sms_gateway.py   SMS through a JSON HTTP gateway with an idempotency key
    kivra.py, digipost.py, eboks.py   digital mailboxes (mailbox.py: what they share)
    peppol_ap.py     e-invoices to a Peppol access point: its HTTP API or a folder drop
    finvoice.py      Finvoice e-invoices (e-lasku) to a Finnish bank / e-invoice operator in
                     the Finvoice Transmission Frame (finvoice_frame.py)
"""
