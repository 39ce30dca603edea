"""Secrets per environment, encrypted with Fernet before they reach the database."""

from __future__ import annotations

from sqlalchemy import delete, select

from envplane.errors import EnvplaneError
from envplane.names import check_ident
from envplane.state.base import StoreBase, now
from envplane.state.keys import ENV_VAR, KEY_FILE, SecretKey, load_key
from envplane.state.models import SecretRow


class VaultMixin(StoreBase):
    _key: SecretKey | None = None

    def _secret_key(self) -> SecretKey:
        if self._key is None:
            self._key = load_key(self.home)
        return self._key

    def _mismatch(self, env: str, key: SecretKey) -> EnvplaneError:
        return EnvplaneError(
            f"the secret key from {key.source} does not match the key that encrypted the "
            f"secrets of environment {env!r}",
            hint=f"set {ENV_VAR} to (or restore {self.home / KEY_FILE} with) the key that was "
            "in use when the secrets were written",
        )

    def put_secret(self, env: str, name: str, value: str) -> None:
        self._env(env)
        check_ident(name, what="secret name")
        key = self._secret_key()
        token = key.fernet.encrypt(value.encode()).decode("ascii")
        with self._write() as s:
            # Refuse to mix keys: secrets written with another key would become unreadable.
            other = s.scalar(select(SecretRow.env).where(SecretRow.key_id != key.key_id).limit(1))
            if other is not None:
                raise self._mismatch(other, key)
            row = s.get(SecretRow, (env, name))
            if row is None:
                s.add(
                    SecretRow(
                        env=env, name=name, ciphertext=token, key_id=key.key_id, updated_at=now()
                    )
                )
            else:
                row.ciphertext, row.key_id, row.updated_at = token, key.key_id, now()

    def get_secret(self, env: str, name: str) -> str:
        self._env(env)
        with self._read() as s:
            row = s.get(SecretRow, (env, name))
            if row is None:
                raise EnvplaneError(
                    f"environment {env!r} has no secret {name!r}",
                    hint=f"`envplane create {env}` generates the secrets it needs",
                )
            token, key_id = row.ciphertext, row.key_id
        from cryptography.fernet import InvalidToken

        key = self._secret_key()
        if key_id != key.key_id:
            raise self._mismatch(env, key)
        try:
            return key.fernet.decrypt(token.encode("ascii")).decode()
        except InvalidToken:
            raise self._mismatch(env, key) from None

    def secret_names(self, env: str) -> list[str]:
        query = select(SecretRow.name).where(SecretRow.env == self._env(env))
        with self._read() as s:
            return sorted(s.scalars(query))

    def delete_secrets(self, env: str) -> None:
        with self._write() as s:
            s.execute(delete(SecretRow).where(SecretRow.env == self._env(env)))
