<?php

namespace App\Models;

use Illuminate\Notifications\Notifiable;

// A notifiable user. Laravel derives its broadcast channel from the class
// name and the key: private-App.Models.User.{id}. A plain object rather than
// an Eloquent model, so the queued broadcast job needs no database to restore
// it; the channel name and payload are the same.
class User
{
    use Notifiable;

    public function __construct(public int $id)
    {
    }

    public function getKey(): int
    {
        return $this->id;
    }
}
