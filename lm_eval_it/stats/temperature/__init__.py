"""temperature."""
