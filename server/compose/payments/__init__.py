"""Payment schemes per country: accounts (`accounts`), slip forms and their fields (`slips`),
machine-readable codes (`codes`: EPC QR, the Finnish virtual bar code). Payment references
and their check digits live in `server.compose.references`."""
