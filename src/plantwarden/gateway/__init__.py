"""The inline Modbus/TCP security gateway: an asyncio shell around protocols/ and policy decisions."""
