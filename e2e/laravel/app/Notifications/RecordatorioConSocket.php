<?php

namespace App\Notifications;

use Illuminate\Notifications\Notification;

// (f) A notification whose own data holds a "socket" key (toArray, no
// toBroadcast). Laravel's BroadcastEvent overwrites it with the event's
// socket (null here) before publishing.
class RecordatorioConSocket extends Notification
{
    public function via($notifiable)
    {
        return ['broadcast'];
    }

    public function toArray($notifiable)
    {
        return [
            'title' => 'Recordatorio',
            'message' => 'Tu tarea vence hoy a las 5 PM',
            'socket' => 'enchufe-3',
        ];
    }
}
