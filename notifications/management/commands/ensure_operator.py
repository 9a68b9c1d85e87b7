import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "First run: create the superuser 'admin' with a random password if no superuser exists, and say how to log in."
    )

    def handle(self, *args: object, **options: object) -> None:
        users = get_user_model()
        password_file = Path(settings.BASE_DIR) / ".admin_password"
        if users.objects.filter(is_superuser=True).exists():
            if password_file.exists() and users.objects.filter(username="admin").exists():
                self.stdout.write(f"Log in as 'admin' with the password kept in {password_file}.")
            else:
                self.stdout.write(
                    "Log in with your superuser account (python manage.py changepassword <name> to reset)."
                )
            return
        password = secrets.token_urlsafe(12)
        users.objects.create_superuser("admin", "", password)
        password_file.write_text(password + "\n")
        password_file.chmod(0o600)
        self.stdout.write(
            self.style.SUCCESS(f"Created superuser 'admin': log in with password {password} (kept in {password_file}).")
        )
